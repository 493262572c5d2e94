//! Sweeps across machines: `bench run --shard I/N` (or a Slurm array task's environment) runs
//! one of N disjoint parts of the grid, and `bench slurm` prints the array job that runs them
//! all (a real Slurm runs it in tools/slurm/local_test.sh).

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::support::{bench, bench_ok, command};

fn quickstart() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs/quickstart.ron")
}

/// The run directories `bench run --dry-run` lists, with `extra` arguments and environment.
fn planned(extra: &[&str], env: &[(&str, &str)]) -> BTreeSet<String> {
    let tmp = tempfile::tempdir().unwrap();
    let out = command()
        .args([
            "run".as_ref(),
            quickstart().as_os_str(),
            "--dry-run".as_ref(),
        ])
        .args(["--results".as_ref(), tmp.path().as_os_str()])
        .args(extra)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.contains("quickstart"))
        .map(|l| l.rsplit('/').next().unwrap().to_string())
        .collect()
}

#[test]
fn shards_split_a_sweep_into_disjoint_parts_that_slurm_tasks_find() {
    let all = planned(&[], &[]);
    assert_eq!(all.len(), 8);
    let parts: Vec<BTreeSet<String>> = (0..3)
        .map(|i| planned(&["--shard", &format!("{i}/3")], &[]))
        .collect();
    let mut union = BTreeSet::new();
    for part in &parts {
        assert!(part.len() == 2 || part.len() == 3, "{part:?}");
        assert!(part.iter().all(|id| union.insert(id.clone())), "overlap");
    }
    assert_eq!(union, all);
    // An array task (ids 5–7) finds its part in Slurm's variables.
    let task = planned(
        &[],
        &[
            ("SLURM_ARRAY_TASK_ID", "6"),
            ("SLURM_ARRAY_TASK_MIN", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ],
    );
    assert_eq!(task, parts[1]);
    let out = bench([
        "run".as_ref(),
        quickstart().as_os_str(),
        "--shard".as_ref(),
        "3/3".as_ref(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("0 to 2"));
}

#[test]
fn bench_slurm_prints_an_array_job_over_the_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("shared");
    let out = bench_ok([
        "slurm".as_ref(),
        quickstart().as_os_str(),
        "--results".as_ref(),
        results.as_os_str(),
        "--shards".as_ref(),
        "4".as_ref(),
        "--time".as_ref(),
        "01:00:00".as_ref(),
    ]);
    let script = String::from_utf8(out.stdout).unwrap();
    for line in [
        "#!/bin/bash",
        "#SBATCH --array=0-3",
        "#SBATCH --job-name=bench-quickstart",
        "#SBATCH --time=01:00:00",
    ] {
        assert!(script.lines().any(|l| l == line), "{line}:\n{script}");
    }
    let exec = script.lines().last().unwrap();
    assert!(
        exec.starts_with("exec '")
            && exec.contains("quickstart.ron' --results '")
            && exec.contains(&format!("{}'", results.display()))
            && exec.ends_with("--quiet --jobs 1"),
        "{exec}"
    );
    // Several GPUs per task: each run data-parallel on the task's GPUs.
    let script = String::from_utf8(
        bench_ok([
            "slurm".as_ref(),
            quickstart().as_os_str(),
            "--gpus-per-run".as_ref(),
            "2".as_ref(),
        ])
        .stdout,
    )
    .unwrap();
    assert!(script.contains("#SBATCH --gres=gpu:2\n"), "{script}");
    assert!(
        script.contains(" --device cuda:0,1 --devices-per-run 2 --quiet"),
        "{script}"
    );
    // One task per run by default; a bad option value is refused by name.
    let script =
        String::from_utf8(bench_ok(["slurm".as_ref(), quickstart().as_os_str()]).stdout).unwrap();
    assert!(script.contains("#SBATCH --array=0-7"), "{script}");
    let out = bench([
        "slurm".as_ref(),
        quickstart().as_os_str(),
        "--partition".as_ref(),
        "a b".as_ref(),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--partition"));
}
