//! Nothing silently wrong: tables never mix runs of different settings, a diverged run is
//! marked and the sweep goes on, corrupted checkpoints are detected and skipped, what a killed
//! process left half-written is removed, a full disk or a Ctrl-C loses nothing, and every input
//! out of range is refused where it was written.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{bench, bench_ok, command, fixture};

/// A small toy sweep: one run per seed, four epochs, a checkpoint after each.
const SMALL: &str = r#"Sweep(
    name: "small",
    env: Toy2d((prompts: ["ring8"])),
    sampler: (log_prob: Sum, guidance: 1.0, schedule: (inference_steps: 10)),
    epochs: 4,
    checkpoint_every: 1,
    eval: (every: 2, samples_per_prompt: 40, target: (kind: Power, beta: 1.0)),
    seeds: [0],
    algorithms: [(name: "ddpo", params: (sample_batch: 8, train_batch: 8, clip_range: 0.2))],
    rewards: [(name: "bump")],
)"#;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Writes `text` as `name` in `dir` and runs it into `dir/results`.
fn run_in(dir: &Path, name: &str, text: &str, extra: &[&str]) -> Output {
    let file = dir.join(name);
    fs::write(&file, text).unwrap();
    let results = dir.join("results");
    let mut args = vec![
        "run",
        file.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ];
    args.extend(extra);
    bench(args)
}

fn run_dirs(sweep: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(sweep) else {
        return vec![];
    };
    let mut v: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

/// Every file below `dir`, relative, sorted.
fn files_below(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

fn flip_a_byte(file: &Path) {
    let mut bytes = fs::read(file).unwrap();
    let i = bytes.len() - 5;
    bytes[i] ^= 0x55;
    fs::write(file, bytes).unwrap();
}

#[test]
fn tables_never_average_runs_of_different_settings() {
    let tmp = tempfile::tempdir().unwrap();
    // Two sweeps under one results root, and one of them edited and run again in place.
    assert!(run_in(tmp.path(), "a.ron", SMALL, &[]).status.success());
    let other = SMALL.replace("\"small\"", "\"other\"");
    assert!(run_in(tmp.path(), "b.ron", &other, &[]).status.success());
    let edited = SMALL.replace("epochs: 4,", "epochs: 2,");
    assert!(run_in(tmp.path(), "a2.ron", &edited, &[]).status.success());
    let table = stdout(&bench_ok([
        "table",
        tmp.path().join("results").to_str().unwrap(),
    ]));
    let rows: Vec<&str> = table.lines().filter(|l| l.contains("| ddpo")).collect();
    assert_eq!(rows.len(), 3, "three settings, three rows:\n{table}");
    assert!(
        rows.iter().all(|r| r.contains("| 1 |")),
        "one seed each:\n{table}"
    );
    assert!(
        table.contains("sweep: \"other\"") && table.contains("epochs: 2"),
        "{table}"
    );
}

#[test]
fn unreadable_runs_are_reported_and_missing_epochs_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let seeds = SMALL.replace("seeds: [0]", "seeds: [0, 1]");
    assert!(run_in(tmp.path(), "a.ron", &seeds, &[]).status.success());
    let sweep = tmp.path().join("results/small");
    let runs = run_dirs(&sweep);
    fs::remove_file(runs[0].join("eval.csv")).unwrap();
    let out = bench_ok(["table", sweep.to_str().unwrap()]);
    assert!(
        stderr(&out).contains("eval.csv is missing"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("| ddpo | 1 |"), "{}", stdout(&out));
    let out = bench(["table", sweep.to_str().unwrap(), "--epoch", "3"]);
    assert!(
        stderr(&out).contains("no evaluation after epoch 3; evaluated after epochs 0, 2, 4"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn damaged_evaluations_are_reported_not_averaged() {
    let tmp = tempfile::tempdir().unwrap();
    let seeds = SMALL.replace("seeds: [0]", "seeds: [0, 1]");
    assert!(run_in(tmp.path(), "a.ron", &seeds, &[]).status.success());
    let sweep = tmp.path().join("results/small");
    let run = run_dirs(&sweep).remove(0);
    let eval = fs::read_to_string(run.join("eval.csv")).unwrap();
    let last = eval.lines().last().unwrap().to_string();
    let (head, value) = last.rsplit_once(',').unwrap();
    let other = format!("{}", value.parse::<f64>().unwrap() + 1.0);
    let cases = [
        // A value that is not finite, one metric twice with two values, a cut file.
        (
            eval.replace(&last, &format!("{head},NaN")),
            "is not a finite number",
        ),
        (
            format!("{eval}{head},{other}\n"),
            "has two values at epoch 4",
        ),
        (
            eval.lines().take(3).collect::<Vec<_>>().join("\n"),
            "a truncated or edited file",
        ),
    ];
    for (damaged, expected) in cases {
        fs::write(run.join("eval.csv"), damaged).unwrap();
        let out = bench_ok(["table", sweep.to_str().unwrap()]);
        let err = stderr(&out);
        assert!(
            err.contains("not tabulated") && err.contains(expected),
            "{err}"
        );
        // The damaged seed is left out, not averaged in: the row counts one seed.
        assert!(stdout(&out).contains("| ddpo | 1 |"), "{}", stdout(&out));
    }
    // The same line written twice, as an older version's repeated epoch-0 evaluation did, is
    // the same evaluation.
    fs::write(run.join("eval.csv"), format!("{eval}{last}\n")).unwrap();
    let out = bench_ok(["table", sweep.to_str().unwrap()]);
    assert!(stdout(&out).contains("| ddpo | 2 |"), "{}", stderr(&out));
}

#[test]
fn a_restart_before_the_first_checkpoint_evaluates_epoch_zero_once() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(run_in(tmp.path(), "a.ron", SMALL, &[]).status.success());
    let run = run_dirs(&tmp.path().join("results/small")).remove(0);
    // As if killed after evaluating but before any checkpoint.
    fs::remove_dir_all(run.join("checkpoints")).unwrap();
    fs::remove_file(run.join("DONE")).unwrap();
    assert!(run_in(tmp.path(), "a.ron", SMALL, &[]).status.success());
    let eval = fs::read_to_string(run.join("eval.csv")).unwrap();
    assert_eq!(
        eval.lines().filter(|l| l.starts_with("0,reward,")).count(),
        1,
        "{eval}"
    );
}

#[test]
fn a_diverged_run_is_marked_the_sweep_goes_on_and_the_exit_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let text = SMALL
        .replace("seeds: [0]", "seeds: [0, 1]")
        .replace(
            r#"algorithms: [(name: "ddpo","#,
            r#"algorithms: [(name: "draft", params: (k: 1, batch: 8, updates: 4, optim: (lr: 1000.0, max_grad_norm: 0.0))), (name: "ddpo","#,
        )
        .replace(r#"(name: "bump")"#, r#"(name: "mixture")"#);
    let out = run_in(tmp.path(), "d.ron", &text, &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("diverged at epoch 1: train_reward = NaN"),
        "{err}"
    );
    assert!(
        err.contains("2 done, 0 already done, 0 locked, 2 diverged, 0 failed"),
        "{err}"
    );
    let sweep = tmp.path().join("results/small");
    let table = stdout(&bench_ok(["table", sweep.to_str().unwrap()]));
    assert!(
        table.contains("| draft | 0 (2 diverged) | – | diverged |"),
        "{table}"
    );
    assert!(!table.contains("NaN"), "{table}");
    // A rerun does not retry a diverged run (it would diverge again).
    let again = run_in(tmp.path(), "d.ron", &text, &[]);
    assert!(
        stderr(&again).contains("2 already done, 0 locked, 2 diverged"),
        "{}",
        stderr(&again)
    );
}

/// Final evaluations of an uninterrupted run of SMALL, to compare resumed ones with.
fn uninterrupted_eval() -> String {
    let tmp = tempfile::tempdir().unwrap();
    assert!(run_in(tmp.path(), "a.ron", SMALL, &[]).status.success());
    let run = run_dirs(&tmp.path().join("results/small")).remove(0);
    fs::read_to_string(run.join("eval.csv")).unwrap()
}

#[test]
fn corrupted_checkpoints_are_detected_and_skipped_for_earlier_ones() {
    let reference = uninterrupted_eval();
    let tmp = tempfile::tempdir().unwrap();
    assert!(run_in(tmp.path(), "a.ron", SMALL, &[]).status.success());
    let run = run_dirs(&tmp.path().join("results/small")).remove(0);
    let ckpts = run.join("checkpoints");
    // keep_checkpoints (2 by default): the two newest only.
    let mut kept: Vec<String> = fs::read_dir(&ckpts)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    kept.sort();
    assert_eq!(kept, ["epoch-000003", "epoch-000004"]);
    fs::remove_file(run.join("DONE")).unwrap();
    // A flipped byte in the newest weights: resume from the one before.
    flip_a_byte(&ckpts.join("epoch-000004/policy.safetensors"));
    let out = run_in(tmp.path(), "a.ron", SMALL, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("epoch-000004 is unusable")
            && err.contains("policy.safetensors does not match its checksum"),
        "{err}"
    );
    assert!(err.contains("resumed at epoch 3, completed"), "{err}");
    assert_eq!(fs::read_to_string(run.join("eval.csv")).unwrap(), reference);
    // A flipped byte in the optimizer state of one and a partial other: start again.
    fs::remove_file(run.join("DONE")).unwrap();
    let optim = fs::read_dir(ckpts.join("epoch-000003"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().contains("optim"))
        .expect("an optimizer state file");
    flip_a_byte(&optim);
    fs::remove_file(ckpts.join("epoch-000004/CHECKSUMS")).unwrap();
    let out = run_in(tmp.path(), "a.ron", SMALL, &[]);
    let err = stderr(&out);
    assert!(
        err.contains("a partial checkpoint") && err.contains("does not match"),
        "{err}"
    );
    assert!(err.contains(": completed"), "{err}");
    assert_eq!(fs::read_to_string(run.join("eval.csv")).unwrap(), reference);
}

#[test]
fn leftovers_of_a_killed_process_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(run_in(tmp.path(), "a.ron", SMALL, &[]).status.success());
    let run = run_dirs(&tmp.path().join("results/small")).remove(0);
    fs::remove_file(run.join("DONE")).unwrap();
    fs::write(run.join(".eval.csv.tmp-99999"), "half").unwrap();
    fs::create_dir_all(run.join("checkpoints/.tmp-epoch-000005-99999")).unwrap();
    let out = run_in(tmp.path(), "a.ron", SMALL, &[]);
    assert!(
        stderr(&out).contains("removed 2 file(s) a stopped process left half-written"),
        "{}",
        stderr(&out)
    );
    assert!(!files_below(&run).iter().any(|f| f.contains(".tmp-")));
}

/// Writes beyond a file-size limit fail as on a full disk (EFBIG instead of ENOSPC): a plain
/// message, a non-zero exit, no half-written file, and the next run with room completes.
#[test]
fn a_write_failure_is_a_plain_message_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a.ron");
    fs::write(&file, SMALL).unwrap();
    let results = tmp.path().join("results");
    let script = format!(
        "trap '' XFSZ; ulimit -f 8; exec '{}' run '{}' --quiet --results '{}'",
        env!("CARGO_BIN_EXE_bench"),
        file.display(),
        results.display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("File too large") && !err.contains("panicked") && !err.contains("Os {"),
        "{err}"
    );
    assert!(
        !files_below(&results).iter().any(|f| f.contains(".tmp-")),
        "{:?}",
        files_below(&results)
    );
    assert!(run_in(tmp.path(), "a.ron", SMALL, &[]).status.success());
}

#[test]
fn ctrl_c_stops_at_a_checkpoint_and_the_run_resumes_exactly() {
    let reference = uninterrupted_eval();
    let long = SMALL
        .replace("epochs: 4,", "epochs: 400,")
        .replace("checkpoint_every: 1,", "checkpoint_every: 1000,");
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a.ron");
    fs::write(&file, &long).unwrap();
    let results = tmp.path().join("results");
    let child = command()
        .args([
            "run",
            file.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let metrics = || {
        run_dirs(&results.join("small"))
            .first()
            .and_then(|r| fs::read_to_string(r.join("metrics.csv")).ok())
            .map_or(0, |m| m.lines().count())
    };
    let t0 = Instant::now();
    while metrics() < 4 && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("interrupted after epoch") && err.contains("rerun the same command"),
        "{err}"
    );
    let run = run_dirs(&results.join("small")).remove(0);
    let at: usize = fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .filter_map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .strip_prefix("epoch-")?
                .parse()
                .ok()
        })
        .max()
        .expect("a checkpoint at the safe point");
    assert!((3..400).contains(&at), "{at}");
    // Resumed with the 4-epoch setting's data is not comparable; resume the same sweep.
    let out = bench_ok([
        "run",
        file.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ]);
    assert!(
        stderr(&out).contains(&format!("resumed at epoch {at}, completed")),
        "{}",
        stderr(&out)
    );
    let eval = fs::read_to_string(run.join("eval.csv")).unwrap();
    // The first evaluations equal those of SMALL (the same seed, settings up to its epochs).
    for line in reference
        .lines()
        .filter(|l| l.starts_with("0,") || l.starts_with("2,") || l.starts_with("4,"))
    {
        assert!(
            eval.lines().any(|l| l == line),
            "{line} missing from\n{eval}"
        );
    }
}

#[test]
fn sweep_names_cannot_leave_the_results_folder() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["..", "../escape", "/tmp/escape", "", "a/b", "tab\\there"] {
        let text = SMALL.replace("\"small\"", &format!("{name:?}"));
        let out = run_in(tmp.path(), "n.ron", &text, &[]);
        assert!(!out.status.success(), "{name:?} was accepted");
        assert!(
            stderr(&out).contains("n.ron:2:11: name = "),
            "{name:?}: {}",
            stderr(&out)
        );
        assert!(!tmp.path().join("results").exists() && !tmp.path().join("escape").exists());
    }
}

#[test]
fn relative_paths_are_the_sweep_files_and_a_missing_model_says_what_was_tried() {
    let tmp = tempfile::tempdir().unwrap();
    let sweeps = tmp.path().join("sweeps");
    fs::create_dir_all(&sweeps).unwrap();
    let text = |model: &str| {
        format!(
            r#"Sweep(name: "rel", env: Sd((model: "{model}", prompts: ["a cat"], resolution: 16,
                flow_net: (block_out_channels: [32, 32], heads: 4),
                field_net: (block_out_channels: [32, 32], heads: 4))),
            sampler: (schedule: (inference_steps: 2)), epochs: 1,
            algorithms: [(name: "ddpo", params: (sample_batch: 2, train_batch: 2))],
            rewards: [(name: "brightness")])"#
        )
    };
    let relative = pathdiff(&fixture("sd_tiny"), &sweeps);
    fs::write(sweeps.join("ok.ron"), text(&relative)).unwrap();
    // Planned from another working directory: the path is the sweep file's.
    let out = command()
        .current_dir(tmp.path())
        .args(["run", "sweeps/ok.ron", "--dry-run"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    fs::write(sweeps.join("missing.ron"), text("models/sd")).unwrap();
    let out = command()
        .current_dir(tmp.path())
        .args(["run", "sweeps/missing.ron", "--dry-run"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(
        err.contains("`models/sd` is relative to the sweep file's folder `sweeps`")
            && err.contains("sweeps/models/sd"),
        "{err}"
    );
}

/// `to` relative to `from` (both absolute), with `..` as needed.
fn pathdiff(to: &Path, from: &Path) -> String {
    let to = fs::canonicalize(to).unwrap();
    let from = fs::canonicalize(from).unwrap();
    let common = to
        .components()
        .zip(from.components())
        .take_while(|(a, b)| a == b)
        .count();
    let ups = from.components().count() - common;
    let mut out = PathBuf::new();
    for _ in 0..ups {
        out.push("..");
    }
    for c in to.components().skip(common) {
        out.push(c);
    }
    out.display().to_string()
}

/// Each value out of range is refused with its position and nothing is written.
#[test]
fn numbers_out_of_range_are_refused_where_they_were_written() {
    let cases: [(&str, &str, &str); 14] = [
        ("clip_range: 0.2", "clip_range: -0.2", "a.ron:9:87: clip_range = -0.2 must be positive"),
        ("train_batch: 8,", "train_batch: 9,", "a.ron:9:72: train_batch = 9 must be in 1..=8"),
        ("clip_range: 0.2)", "clip_range: 0.2, optim: (lr: NaN))", "a.ron:9:99: optim.lr = NaN must be positive"),
        ("guidance: 1.0", "guidance: inf", "a.ron:4:30: guidance = inf must be finite"),
        ("log_prob: Sum,", "log_prob: Sum, eta: -1.0,", "a.ron:4:30: eta = -1 must be positive"),
        ("inference_steps: 10", "inference_steps: 0", "a.ron:4:56: schedule.inference_steps = 0 must be in 1..=1000"),
        ("epochs: 4,", "epochs: 0,", "a.ron:5:13: epochs = 0 must be in 1..=10000"),
        ("epochs: 4,", "epochs: 1000000000,", "a.ron:5:13: epochs = 1000000000 must be in 1..=10000 (raise `max_epochs`"),
        ("samples_per_prompt: 40", "samples_per_prompt: 0", "a.ron:7:22: samples_per_prompt = 0 must be at least 1"),
        ("beta: 1.0))", "beta: 0.0))", "a.ron:7:68: beta = 0 must be positive"),
        ("sample_batch: 8,", "sample_batch: 1000000000,", "a.ron:9:18: algorithm `ddpo`: sample_batch = 1000000000 trajectories would need at least"),
        ("samples_per_prompt: 40", "samples_per_prompt: 4294967296", "a.ron:7:11: eval.samples_per_prompt = 4294967296 would need at least"),
        ("prompts: [\"ring8\"]", "prompts: [\"ring8\"], hidden: 100000", "a.ron:3:37: hidden = 100000 would need at least"),
        ("checkpoint_every: 1,", "checkpoint_every: 0,", "a.ron:6:23: checkpoint_every = 0 must be at least 1"),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (from, to, expected) in cases {
        assert!(SMALL.contains(from), "{from}");
        let out = run_in(tmp.path(), "a.ron", &SMALL.replacen(from, to, 1), &[]);
        let err = stderr(&out);
        assert!(
            !out.status.success() && err.contains(expected),
            "{to}: {err}"
        );
        assert!(
            !err.contains("panicked") && !tmp.path().join("results").exists(),
            "{to}: {err}"
        );
    }
    // An override's epochs are held to the same bound, at the override's position.
    let over = SMALL.replace(
        "rewards:",
        r#"overrides: [(label: "long", epochs: 0)], rewards:"#,
    );
    let err = stderr(&run_in(tmp.path(), "a.ron", &over, &[]));
    assert!(err.contains("a.ron:10:33: epochs = 0 must be in"), "{err}");
    // And an override that names no component of the sweep.
    let over = SMALL.replace(
        "rewards:",
        r#"overrides: [(label: "x", params: {"dag_db": (beta: 2.0)})], rewards:"#,
    );
    let err = stderr(&run_in(tmp.path(), "a.ron", &over, &[]));
    assert!(
        err.contains("a.ron:10:49: override `x` patches `dag_db`, which is none"),
        "{err}"
    );
}

#[test]
fn bench_sample_checks_its_flags_and_uses_the_models_own_resolution() {
    let tmp = tempfile::tempdir().unwrap();
    let model = fixture("sd_tiny");
    let base = |extra: &[&str]| {
        let mut args = vec![
            "sample",
            "--model",
            model.to_str().unwrap(),
            "--prompt",
            "a cat",
        ];
        args.push("--quiet");
        if !extra.contains(&"--steps") {
            args.extend(["--steps", "2"]);
        }
        args.extend_from_slice(extra);
        bench(args)
    };
    let out_png = tmp.path().join("x.png");
    let out = base(&["--out", out_png.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let img = image::open(&out_png).unwrap();
    assert_eq!(
        (img.width(), img.height()),
        (16, 16),
        "the model's own size"
    );
    let junk = tmp.path().join("notes.txt");
    fs::write(&junk, "not a LoRA").unwrap();
    for (extra, expected) in [
        (
            vec!["--lora", junk.to_str().unwrap()],
            "--lora: cannot read",
        ),
        (vec!["--cfg", "nan"], "--cfg"),
        (
            vec!["--out", "x.jpg"],
            "--out x.jpg: images are written as PNG",
        ),
        (
            vec!["--out", "/nonexistent/dir/x.png"],
            "the folder /nonexistent/dir does not exist",
        ),
        (
            vec!["--resolution", "100000"],
            "--resolution 100000 with --batch 4 would need at least",
        ),
        (vec!["--steps", "0"], "--steps 0 must be in 1..=1000"),
    ] {
        let out = base(&extra);
        let err = stderr(&out);
        assert!(
            !out.status.success() && err.contains(expected),
            "{extra:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn bench_doctor_says_what_is_wrong_with_a_file_or_a_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("sd");
    fs::create_dir_all(&folder).unwrap();
    for part in [
        "model_index.json",
        "tokenizer",
        "text_encoder",
        "unet",
        "vae",
    ] {
        let from = fixture("sd_tiny").join(part);
        let to = folder.join(part);
        if from.is_dir() {
            fs::create_dir_all(&to).unwrap();
            for f in fs::read_dir(&from).unwrap() {
                let f = f.unwrap().path();
                fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
            }
        } else {
            fs::copy(&from, &to).unwrap();
        }
    }
    let out = bench(["doctor", "--model", folder.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("note     scheduler:") && stdout(&out).contains("is missing"));
    flip_a_byte(&folder.join("unet/diffusion_pytorch_model.safetensors"));
    fs::write(
        folder.join("vae/diffusion_pytorch_model.safetensors"),
        "garbage",
    )
    .unwrap();
    let out = bench(["doctor", "--model", folder.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("vae") && stdout(&out).contains("not a safetensors file"),
        "{}",
        stdout(&out)
    );
    let file = tmp.path().join("notes.txt");
    fs::write(&file, "hello").unwrap();
    let out = bench(["doctor", "--model", file.to_str().unwrap()]);
    assert!(
        !out.status.success() && stdout(&out).contains("not a safetensors file"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("is not a usable SD v1.x model"),
        "{}",
        stderr(&out)
    );
}
