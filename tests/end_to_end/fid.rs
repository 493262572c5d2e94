//! `bench fid`: statistics files as pytorch-fid saves them, and a folder's statistics through
//! pytorch-fid's Inception (deterministic weights, tools/fixtures/make_inception.py); `bench
//! doctor` on the image metrics' weights.

use std::fs;
use std::path::Path;

use crate::support::{bench, bench_ok, fixture, inception_weights};

/// The `FID: <value>` line's value.
fn fid_value(out: std::process::Output) -> f64 {
    let text = String::from_utf8(out.stdout).unwrap();
    let last = text.lines().last().unwrap_or_default();
    last.strip_prefix("FID: ")
        .unwrap_or_else(|| panic!("last line {last:?}"))
        .parse()
        .unwrap()
}

fn expected(case: &str) -> f64 {
    let all: Vec<serde_json::Value> =
        serde_json::from_str(&fs::read_to_string(fixture("frechet/cases.json")).unwrap()).unwrap();
    let found = all.into_iter().find(|c| c["name"] == case).unwrap();
    found["pytorch_fid"].as_f64().unwrap()
}

#[test]
fn fid_of_npz_statistics_is_pytorch_fids() {
    // One file from np.savez, one from np.savez_compressed.
    let a = fixture("frechet/stats_a.npz");
    let b = fixture("frechet/stats_b.npz");
    let got = fid_value(bench_ok(["fid".as_ref(), a.as_os_str(), b.as_os_str()]));
    let want = expected("npz");
    assert!((got - want).abs() <= 1e-10 * want, "{got} vs {want}");
    let zero = fid_value(bench_ok(["fid".as_ref(), a.as_os_str(), a.as_os_str()]));
    assert!(zero.abs() < 1e-9, "{zero}");
    // A missing file and a file that is not statistics are named.
    let out = bench(["fid".as_ref(), a.as_os_str(), "nothing.npz".as_ref()]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("nothing.npz"), "{err}");
}

#[test]
fn a_folders_statistics_are_pytorch_fids_and_missing_weights_say_where_to_get_them() {
    let dir = tempfile::tempdir().unwrap();
    let folder = fixture("inception/folder");
    let out = bench([
        "fid".as_ref(),
        folder.as_os_str(),
        folder.as_os_str(),
        "--quiet".as_ref(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("pt_inception-2015-12-05-6726825d.pth")
            && err.contains("pytorch-fid/releases"),
        "{err}"
    );

    let weights = inception_weights(dir.path());

    // `bench doctor` checks them from the tensor list, and names where to get missing ones.
    let out = bench_ok([
        "doctor".as_ref(),
        "--fid-weights".as_ref(),
        weights.as_os_str(),
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("  ok       "), "{text}");
    let out = bench(["doctor", "--fid-weights", "nothing.pth"]);
    assert!(!out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("MISSING") && text.contains("pytorch-fid/releases"),
        "{text}"
    );

    let stats = dir.path().join("folder.npz");
    bench_ok([
        "fid".as_ref(),
        "--save-stats".as_ref(),
        folder.as_os_str(),
        stats.as_os_str(),
        "--weights".as_ref(),
        weights.as_os_str(),
        "--batch".as_ref(),
        "2".as_ref(),
        "--quiet".as_ref(),
    ]);
    // Read back with the same reader pytorch-fid's files go through, against its values.
    let io = fs::read(fixture("inception/io.safetensors")).unwrap();
    let io = safetensors::SafeTensors::deserialize(&io).unwrap();
    let want = |name: &str| -> Vec<f64> {
        io.tensor(name)
            .unwrap()
            .data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let saved = bench::fid_stats::read(&stats).unwrap();
    let d = 2048;
    let close = |got: &[f64], want: &[f64], what: &str| {
        let err = got
            .iter()
            .zip(want)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(err <= 1e-4, "{what}: {err}");
    };
    close(&saved.mean, &want("folder.mu"), "mu");
    let diag: Vec<f64> = (0..d).map(|i| saved.covariance[i * d + i]).collect();
    close(&diag, &want("folder.sigma_diag"), "sigma diagonal");
    close(
        &saved.covariance[..d],
        &want("folder.sigma_row0"),
        "sigma row 0",
    );

    // `bench fid A B` with the fixture's weights, and `extra` flags.
    let fid = |a: &Path, b: &Path, extra: &[&str]| {
        let mut args = vec!["fid".as_ref(), a.as_os_str(), b.as_os_str()];
        args.extend([
            "--weights".as_ref(),
            weights.as_os_str(),
            "--quiet".as_ref(),
        ]);
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        fid_value(bench_ok(args))
    };
    // The folder against its own statistics: 0; against 16-d statistics: refused by name.
    let zero = fid(&folder, &stats, &[]);
    assert!(zero.abs() <= 1e-9, "{zero}");
    // Two folders take the route from the feature rows (3 images, 2048 features): 0 too.
    let zero = fid(&folder, &folder, &[]);
    assert!(zero.abs() <= 1e-9, "{zero}");
    // clean-fid's resize gives other features of the same images (parity: the models tests).
    let clean = fid(&folder, &stats, &["--resize", "clean-fid"]);
    assert!(clean > 1e-3, "{clean}");
    let out = bench([
        "fid".as_ref(),
        stats.as_os_str(),
        fixture("frechet/stats_a.npz").as_os_str(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("different widths"));
}

#[test]
fn doctor_loads_the_dreamsim_models_of_a_cache_folder_and_says_where_to_get_one() {
    let folder = fixture("dreamsim/models");
    let out = bench_ok(["doctor".as_ref(), "--dreamsim".as_ref(), folder.as_os_str()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("ok       Ensemble (Dino 128 + Clip 64 + OpenClip 64)")
            && text.contains("ok       DinoVitb16 (Dino 128)"),
        "{text}"
    );
    let empty = tempfile::tempdir().unwrap();
    let out = bench([
        "doctor".as_ref(),
        "--dreamsim".as_ref(),
        empty.path().as_os_str(),
    ]);
    assert!(!out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("MISSING") && text.contains("pip install dreamsim"),
        "{text}"
    );
}
