//! A sweep killed mid-way (a real process, SIGKILL) resumes: finished runs are not redone,
//! the interrupted run continues from its checkpoint, and the results equal those of an
//! uninterrupted sweep.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use crate::support::{bench_ok, command};

const SWEEP: &str = r#"
Sweep(
    name: "resume",
    env: Toy2d((prompts: ["ring8"])),
    sampler: (log_prob: Sum, guidance: 1.0),
    epochs: 40,
    checkpoint_every: 5,
    eval: (every: 20, samples_per_prompt: 100),
    seeds: [0, 1, 2, 3],
    algorithms: [(name: "ddpo", params: (sample_batch: 16, train_batch: 8, clip_range: 0.2))],
    rewards: [(name: "bump")],
)
"#;

fn runs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn mtime(p: &Path) -> SystemTime {
    fs::metadata(p).unwrap().modified().unwrap()
}

fn has_checkpoint(run: &Path) -> bool {
    fs::read_dir(run.join("checkpoints"))
        .map(|d| {
            d.filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().starts_with("epoch-"))
        })
        .unwrap_or(false)
}

#[test]
fn killed_sweep_resumes_without_redoing_finished_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = tmp.path().join("resume.ron");
    fs::write(&sweep, SWEEP).unwrap();
    let results = tmp.path().join("results");
    let dir = results.join("resume");

    // One job, so that exactly one run is caught mid-way.
    let mut child = command()
        .args([
            "run",
            sweep.to_str().unwrap(),
            "--quiet",
            "--jobs",
            "1",
            "--results",
        ])
        .arg(&results)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill once a run has finished and the next one has a checkpoint but is not done.
    let start = Instant::now();
    loop {
        let all = runs(&dir);
        let done = all.iter().filter(|r| r.join("DONE").exists()).count();
        let partial = all
            .iter()
            .any(|r| !r.join("DONE").exists() && has_checkpoint(r));
        if done >= 1 && partial {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sweep ended before it could be killed"
        );
        assert!(start.elapsed() < Duration::from_secs(300), "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up.
    child.wait().unwrap();

    let finished: Vec<(PathBuf, SystemTime, SystemTime)> = runs(&dir)
        .into_iter()
        .filter(|r| r.join("DONE").exists())
        .map(|r| {
            (
                r.clone(),
                mtime(&r.join("DONE")),
                mtime(&r.join("metrics.csv")),
            )
        })
        .collect();
    let interrupted: Vec<PathBuf> = runs(&dir)
        .into_iter()
        .filter(|r| !r.join("DONE").exists() && has_checkpoint(r))
        .collect();
    assert_eq!(interrupted.len(), 1);

    let out = bench_ok([
        "run".as_ref(),
        sweep.as_os_str(),
        "--results".as_ref(),
        results.as_os_str(),
    ]);
    let log = String::from_utf8_lossy(&out.stderr);

    for (run, done, metrics) in &finished {
        let id = run.file_name().unwrap().to_string_lossy();
        assert!(
            log.contains(&format!("{id}: already done, skipped")),
            "{log}"
        );
        assert_eq!(mtime(&run.join("DONE")), *done, "{id} was redone");
        assert_eq!(mtime(&run.join("metrics.csv")), *metrics, "{id} was redone");
    }
    let id = interrupted[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    assert!(log.contains(&format!("{id}: resumed at epoch")), "{log}");

    // Every run is complete, with each epoch logged exactly once.
    let all = runs(&dir);
    assert_eq!(all.len(), 4);
    for run in &all {
        assert!(run.join("DONE").exists());
        let epochs: Vec<usize> = csv::Reader::from_path(run.join("metrics.csv"))
            .unwrap()
            .records()
            .map(|r| r.unwrap()[0].parse().unwrap())
            .collect();
        assert_eq!(epochs, (1..=40).collect::<Vec<_>>(), "{}", run.display());
    }

    // Resuming is exact: an uninterrupted sweep gives the same evaluations.
    let fresh = tmp.path().join("fresh");
    let out = command()
        .args(["run", sweep.to_str().unwrap(), "--quiet", "--results"])
        .arg(&fresh)
        .output()
        .unwrap();
    assert!(out.status.success());
    for run in &all {
        let twin = fresh.join("resume").join(run.file_name().unwrap());
        assert_eq!(
            fs::read_to_string(run.join("eval.csv")).unwrap(),
            fs::read_to_string(twin.join("eval.csv")).unwrap(),
            "{}",
            run.display()
        );
    }
}

#[test]
fn a_locked_run_is_left_to_its_owner() {
    use fs2::FileExt;
    let tmp = tempfile::tempdir().unwrap();
    let sweep = tmp.path().join("resume.ron");
    fs::write(
        &sweep,
        SWEEP
            .replace("seeds: [0, 1, 2, 3]", "seeds: [0, 1]")
            .replace("epochs: 40", "epochs: 5"),
    )
    .unwrap();
    let results = tmp.path().join("results");
    let plugins = bench::Plugins::default();
    let plan = bench::runner::plan(&sweep, &results, &plugins).unwrap();
    let (locked_id, _) = &plan.runs[0];
    let run_dir = plan.dir.join(locked_id);
    fs::create_dir_all(&run_dir).unwrap();
    let lock = fs::File::create(run_dir.join(".lock")).unwrap();
    lock.lock_exclusive().unwrap();

    let out = command()
        .args(["run", sweep.to_str().unwrap(), "--results"])
        .arg(&results)
        .output()
        .unwrap();
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains(&format!("{locked_id}: locked by another process, skipped")),
        "{log}"
    );
    assert!(!run_dir.join("DONE").exists());
    assert!(plan.dir.join(&plan.runs[1].0).join("DONE").exists());
}
