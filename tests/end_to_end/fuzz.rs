//! Seeded random mutations of the shipped sweeps through `bench run --dry-run` (parse, resolve,
//! check and build every run): each must end in success or a clean error — never a panic, an
//! abort or another signal, a hang, or a file written anywhere.

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::support::{command, fixture};

/// Mutations per shipped sweep.
const PER_CONFIG: usize = 60;

/// The value a number may be replaced with: zero, negatives, huge, tiny, non-finite.
const NUMBERS: [&str; 14] = [
    "0",
    "-1",
    "1",
    "2",
    "0.5",
    "-0.5",
    "1e9",
    "1000000000",
    "4294967296",
    "1e300",
    "1e-300",
    "NaN",
    "inf",
    "-inf",
];

/// The value a string may be replaced with: empty, paths leaving the folder, control
/// characters, unknown names, a long one.
const STRINGS: [&str; 9] = [
    "\"\"",
    "\"..\"",
    "\"../escape\"",
    "\"/tmp/escape\"",
    "\"a/b\"",
    "\"\\u{1}\"",
    "\"unknown\"",
    "\"ring8\"",
    "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"",
];

/// Identifiers swapped for others of the same kind, or for nonsense.
const IDENTS: [&str; 12] = [
    "Ddim",
    "Ddpm",
    "SdeDpmSolver",
    "Sum",
    "Mean",
    "Power",
    "Tilted",
    "Base",
    "Current",
    "Toy2d",
    "Sd",
    "Nonsense",
];

/// Spans of `text` matching `pred` (maximal runs of its characters).
fn tokens(
    text: &str,
    start: impl Fn(u8) -> bool,
    cont: impl Fn(u8) -> bool,
) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i < b.len() {
        let boundary =
            i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b'.');
        if boundary && start(b[i]) {
            let j = (i + 1..b.len()).find(|&j| !cont(b[j])).unwrap_or(b.len());
            out.push((i, j));
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

fn strings(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'"' {
            let j = (i + 1..b.len())
                .find(|&j| b[j] == b'"')
                .map_or(b.len(), |j| j + 1);
            out.push((i, j));
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// One random mutation of `text` (an empty text stays empty).
fn mutate(text: &str, rng: &mut StdRng) -> String {
    if text.is_empty() {
        return String::new();
    }
    let replace =
        |(a, b): (usize, usize), with: &str| format!("{}{with}{}", &text[..a], &text[b..]);
    let pick = |v: &[(usize, usize)], rng: &mut StdRng| v[rng.random_range(0..v.len())];
    match rng.random_range(0..7) {
        0 => {
            let numbers = tokens(
                text,
                |c| c.is_ascii_digit(),
                |c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-',
            );
            if numbers.is_empty() {
                return truncate(text, rng);
            }
            let with = NUMBERS[rng.random_range(0..NUMBERS.len())];
            replace(pick(&numbers, rng), with)
        }
        1 => {
            let spans = strings(text);
            if spans.is_empty() {
                return truncate(text, rng);
            }
            let with = STRINGS[rng.random_range(0..STRINGS.len())];
            replace(pick(&spans, rng), with)
        }
        2 => {
            let idents: Vec<_> = tokens(
                text,
                |c| c.is_ascii_uppercase(),
                |c| c.is_ascii_alphanumeric(),
            )
            .into_iter()
            .filter(|&(a, b)| IDENTS.contains(&&text[a..b]))
            .collect();
            if idents.is_empty() {
                return text.replacen("epochs", "epoch", 1);
            }
            replace(
                pick(&idents, rng),
                IDENTS[rng.random_range(0..IDENTS.len())],
            )
        }
        3 => {
            let lines: Vec<&str> = text.lines().collect();
            let i = rng.random_range(0..lines.len());
            lines
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, l)| *l)
                .collect::<Vec<_>>()
                .join("\n")
        }
        4 => {
            let lines: Vec<&str> = text.lines().collect();
            let i = rng.random_range(0..lines.len());
            let mut out = lines.clone();
            out.insert(i, lines[i]);
            out.join("\n")
        }
        5 => truncate(text, rng),
        _ => {
            let mut at = rng.random_range(0..text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            let junk = ["(", ")", ",", ":", "]", "\"", "{", "#", "\u{0}"][rng.random_range(0..9)];
            format!("{}{junk}{}", &text[..at], &text[at..])
        }
    }
}

/// `text` cut at a random character boundary.
fn truncate(text: &str, rng: &mut StdRng) -> String {
    let mut cut = rng.random_range(0..text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text[..cut].to_string()
}

/// Every file below `dir`.
fn files(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

#[test]
fn mutated_sweeps_end_in_success_or_a_clean_error() {
    let (ok, refused) = fuzz(Mode::DryRun, |text| text.to_string());
    assert!(ok > 0 && refused > 0);
}

/// The same mutations run for real, each sweep first shrunk to 2 epochs of 8 samples (the
/// mutation may still make it large). About 5 minutes on 2 cores, so opt-in:
/// `cargo test -p bench --test end_to_end -- --ignored mutated_sweeps_run`.
#[test]
#[ignore]
fn mutated_sweeps_run_to_success_or_a_clean_error() {
    let (ok, _) = fuzz(Mode::Run, shrink);
    assert!(ok > 0);
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    DryRun,
    Run,
}

/// Mutates every shipped sweep (after `prepare`) `PER_CONFIG` times, checks each outcome on
/// two threads, and returns how many were valid and how many refused.
fn fuzz(mode: Mode, prepare: fn(&str) -> String) -> (usize, usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let mut bases: Vec<(String, String)> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .map(|p| {
            let text = fs::read_to_string(&p)
                .unwrap()
                .replace("\"../fixtures/", &format!("\"{}/", fixture("").display()));
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                prepare(&text),
            )
        })
        .collect();
    bases.sort();
    assert!(bases.len() >= 4);
    let cases: Vec<(String, u64, String)> = bases
        .iter()
        .flat_map(|(name, text)| {
            (0..PER_CONFIG as u64).map(move |seed| {
                let mut rng = StdRng::seed_from_u64(seed);
                let mut mutated = mutate(text, &mut rng);
                if rng.random_bool(0.3) {
                    mutated = mutate(&mutated, &mut rng);
                }
                (name.clone(), seed, mutated)
            })
        })
        .collect();
    let (mut ok, mut refused) = (0, 0);
    let failures: Vec<String> = std::thread::scope(|s| {
        let chunks: Vec<_> = cases.chunks(cases.len().div_ceil(2)).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                s.spawn(move || {
                    let mut results = vec![];
                    for (name, seed, text) in chunk {
                        results.push((format!("{name} #{seed}"), check(text, mode)));
                    }
                    results
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .filter_map(|(case, r)| match r {
                Ok(true) => {
                    ok += 1;
                    None
                }
                Ok(false) => {
                    refused += 1;
                    None
                }
                Err(e) => Some(format!("{case}: {e}")),
            })
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    eprintln!(
        "{} mutated sweeps: {ok} valid, {refused} refused or ended with diverged runs, cleanly",
        cases.len()
    );
    (ok, refused)
}

/// `text` with its epochs, evaluation sizes and batches made small, so that a run takes seconds.
fn shrink(text: &str) -> String {
    const SMALL: [(&str, &str); 6] = [
        ("epochs: ", "2"),
        ("every: ", "1"),
        ("samples_per_prompt: ", "8"),
        ("sample_batch: ", "8"),
        ("train_batch: ", "4"),
        ("inference_steps: ", "8"),
    ];
    let mut out = String::new();
    for line in text.lines() {
        let mut line = line.to_string();
        for (key, value) in SMALL {
            if let Some(i) = line.find(key) {
                let j = i + key.len();
                let end = line[j..]
                    .find(|c: char| !c.is_ascii_digit())
                    .map_or(line.len(), |k| j + k);
                if end > j {
                    line = format!("{}{value}{}", &line[..j], &line[end..]);
                }
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Runs one mutated sweep: `Ok(valid)` for a clean outcome, `Err` for a panic, a signal, a hang
/// or a file written (a dry run writes nothing; a run writes only under its results directory).
fn check(text: &str, mode: Mode) -> Result<bool, String> {
    let tmp = tempfile::tempdir().unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    let file = tmp.path().join("sweep.ron");
    fs::write(&file, text).unwrap();
    let mut child = command()
        .args(["run", file.to_str().unwrap(), "--results"])
        .arg(tmp.path().join("results"))
        .args((mode == Mode::DryRun).then_some("--dry-run"))
        .current_dir(tmp.path())
        .stdout(Stdio::null())
        // A file rather than a pipe: a real sweep may say more than a pipe holds.
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if t0.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            return Err("still running after 120 s".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let results_prefix = format!("{}/", tmp.path().join("results").display());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut log.reopen().unwrap(), &mut err).unwrap();
    let written: Vec<String> = files(tmp.path())
        .into_iter()
        .filter(|f| !f.ends_with("sweep.ron"))
        .filter(|f| mode == Mode::DryRun || !f.starts_with(&results_prefix))
        .collect();
    if !written.is_empty() {
        return Err(format!("wrote {written:?}"));
    }
    match status.code() {
        Some(0) => Ok(true),
        // A refused sweep says why on its first line; a sweep whose runs diverged reports them
        // and ends with a line saying so.
        Some(1)
            if !err.contains("panicked")
                && (err.starts_with("error: ") || err.contains("\nerror: ")) =>
        {
            Ok(false)
        }
        code => Err(format!(
            "exit {code:?} (signal: {:?}):\n{err}\n--- sweep ---\n{text}",
            {
                use std::os::unix::process::ExitStatusExt;
                status.signal()
            }
        )),
    }
}
