//! The plugin runs through `bench run` like a built-in objective: listed, trained, resumed
//! from its results, tabled.

use std::process::Command;

const SWEEP: &str = r#"Sweep(
    name: "plugin",
    env: Toy2d((prompts: ["ring8"])),
    sampler: (log_prob: Sum, guidance: 1.0, schedule: (inference_steps: 10)),
    epochs: 3,
    checkpoint_every: 1,
    eval: (every: 3, samples_per_prompt: 50, target: (kind: Power, beta: 1.0)),
    seeds: [0],
    algorithms: [(name: "reinforce", params: (sample_batch: 8))],
    rewards: [(name: "bump")],
)"#;

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bench-with-reinforce"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_plugin_objective_runs_through_bench_run() {
    let listed = bench(&["list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("reinforce"));

    let tmp = tempfile::tempdir().unwrap();
    let sweep = tmp.path().join("plugin.ron");
    std::fs::write(&sweep, SWEEP).unwrap();
    let results = tmp.path().join("results");
    let args = [
        "run",
        sweep.to_str().unwrap(),
        "--quiet",
        "--results",
        results.to_str().unwrap(),
    ];
    let out = bench(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: Vec<_> = std::fs::read_dir(results.join("plugin")).unwrap().collect();
    assert_eq!(runs.len(), 1);
    let run = runs[0].as_ref().unwrap().path();
    assert!(run.join("DONE").exists());
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(
        metrics.lines().count(),
        4,
        "a header and 3 epochs:\n{metrics}"
    );

    // A second invocation finds the run finished and redoes nothing.
    let again = bench(&args);
    assert!(again.status.success());
    assert_eq!(
        std::fs::read_to_string(run.join("metrics.csv")).unwrap(),
        metrics
    );

    let table = bench(&["table", results.join("plugin").to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("| bump | reinforce | 1 |"));
}

#[test]
fn a_gradient_method_refuses_a_non_differentiable_reward_before_running() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = tmp.path().join("grad.ron");
    let text = SWEEP
        .replace(
            r#"(name: "reinforce", params: (sample_batch: 8))"#,
            r#"(name: "draft")"#,
        )
        .replace(r#"(name: "bump")"#, r#"(name: "quadrant")"#);
    std::fs::write(&sweep, text).unwrap();
    let results = tmp.path().join("results");
    let out = bench(&[
        "run",
        sweep.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("grad.ron:10:")
            && err.contains("`draft` backpropagates through the reward")
            && err.contains("`quadrant` is not differentiable"),
        "{err}"
    );
    assert!(!results.exists(), "nothing is written for an invalid sweep");
}
