//! What the end-to-end tests share: the `bench` binary and the committed fixtures.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A file or folder under the repository's `fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(rel)
}

/// A `bench` command, for tests that spawn and control the process.
pub fn command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bench"))
}

/// Runs `bench` with `args` to completion.
pub fn bench<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    command().args(args).output().unwrap()
}

/// Runs `bench` with `args`, failing the test with bench's stderr if it does not succeed.
pub fn bench_ok<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = bench(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// diffusers' images `[N, 3, H, W]` in [0, 1] stored as tensor `name` of fixture `file`, as
/// 8-bit interleaved RGB (as PNG stores pixels), image by image.
pub fn expected_pixels(file: &str, name: &str) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(fixture(file)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let view = st.tensor(name).unwrap();
    let [n, c, h, w]: [usize; 4] = view.shape().try_into().unwrap();
    let v: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (0..n)
        .map(|i| {
            let mut out = Vec::with_capacity(c * h * w);
            for p in 0..h * w {
                for ch in 0..c {
                    let x = v[i * c * h * w + ch * h * w + p];
                    out.push((x * 255.0).round().clamp(0.0, 255.0) as u8);
                }
            }
            out
        })
        .collect()
}

/// The largest difference between two images' 8-bit values.
pub fn max_level_diff(a: &[u8], b: &[u8]) -> u8 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap()
}

/// pytorch-fid's Inception with deterministic weights under the real checkpoint's keys
/// (`bench_models::inception::deterministic_weights`), written to `dir`.
pub fn inception_weights(dir: &Path) -> PathBuf {
    let keys: Vec<(String, Vec<usize>)> =
        serde_json::from_str(&std::fs::read_to_string(fixture("inception/keys.json")).unwrap())
            .unwrap();
    let weights = dir.join("inception.safetensors");
    bench_models::inception::write_deterministic_weights(&keys, &weights).unwrap();
    weights
}

/// The numbers of every `metrics.csv` and `eval.csv` below `dir` (bar the seconds an epoch
/// took), by relative path.
pub fn logged_numbers(dir: &Path) -> Vec<(String, Vec<f64>)> {
    let mut out = Vec::new();
    for run in fs::read_dir(dir).unwrap() {
        let run = run.unwrap().path();
        for name in ["metrics.csv", "eval.csv"] {
            let text = fs::read_to_string(run.join(name)).unwrap();
            let mut lines = text.lines();
            let header: Vec<&str> = lines.next().unwrap().split(',').collect();
            let numbers = lines
                .flat_map(|l| l.split(',').zip(&header).map(|(v, h)| (v.to_string(), *h)))
                .filter(|(_, h)| *h != "seconds")
                .filter_map(|(v, _)| v.parse().ok())
                .collect();
            let rel = run
                .join(name)
                .strip_prefix(dir)
                .unwrap()
                .display()
                .to_string();
            out.push((rel, numbers));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Two [`logged_numbers`] of the same runs equal within `rel` (relative, above 1).
pub fn assert_close(a: &[(String, Vec<f64>)], b: &[(String, Vec<f64>)], rel: f64) {
    assert_eq!(a.len(), b.len());
    for ((file, a), (file_b, b)) in a.iter().zip(b) {
        assert_eq!((file, a.len()), (file_b, b.len()));
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= rel * (1.0 + x.abs()), "{file}: {x} vs {y}");
        }
    }
}
