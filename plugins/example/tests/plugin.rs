//! The plugin runs through `bench run` like the built-ins: its objective is listed, trains on
//! the toy and on the tiny SD, resumes from its results and is tabled; its metric is a column
//! of `bench table`.

use std::process::Command;

const SWEEP: &str = r#"Sweep(
    name: "plugin",
    env: Toy2d((prompts: ["ring8"])),
    sampler: (log_prob: Sum, guidance: 1.0, schedule: (inference_steps: 10)),
    epochs: 3,
    checkpoint_every: 1,
    eval: (every: 3, samples_per_prompt: 50, target: (kind: Power, beta: 1.0), metrics: [
        (name: "reward"),
        (name: "reward_above", params: (threshold: -1.0)),
    ]),
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
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("| bump | reinforce | 1 |"), "{table}");
    // The plugin's metric is a column, its value the fraction read back from eval.csv.
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap()
        .split('|')
        .map(str::trim)
        .collect();
    let column = header
        .iter()
        .position(|h| *h == "reward_above")
        .expect("a column");
    let row: Vec<&str> = table
        .lines()
        .nth(2)
        .unwrap()
        .split('|')
        .map(str::trim)
        .collect();
    let shown: f64 = row[column]
        .split('±')
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let eval = std::fs::read_to_string(run.join("eval.csv")).unwrap();
    let logged: f64 = eval
        .lines()
        .find(|l| l.starts_with("3,reward_above,"))
        .and_then(|l| l.rsplit(',').next()?.parse().ok())
        .expect("reward_above at the final evaluation");
    assert!(
        (0.0..=1.0).contains(&logged) && (shown - logged).abs() < 1e-3,
        "{table}"
    );

    // On two devices the plugin's objective, which does not split its steps (the trait's
    // default), trains them on the first and says so; its rollouts are split.
    let spread = tmp.path().join("spread");
    let out = bench(&[
        "run",
        sweep.to_str().unwrap(),
        "--quiet",
        "--results",
        spread.to_str().unwrap(),
        "--devices-per-run",
        "2",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("reinforce spreads its rollouts; its steps train on the first device only"),
        "{err}"
    );
}

/// The objective registered once trains a LoRA on the tiny SD fixture too.
#[test]
fn the_plugin_objective_trains_on_tiny_sd() {
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/sd_tiny");
    let text = format!(
        r#"Sweep(
    name: "plugin_sd",
    env: Sd((model: "{}", prompts: ["a photo of a cat"], resolution: 16)),
    sampler: (schedule: (inference_steps: 4)),
    epochs: 1,
    eval: (every: 1, samples_per_prompt: 2, metrics: [(name: "reward_above", params: (threshold: 0.5))]),
    algorithms: [(name: "reinforce", params: (sample_batch: 2, optim: (lr: 1e-2)))],
    rewards: [(name: "brightness")],
)"#,
        model.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let sweep = tmp.path().join("sd.ron");
    std::fs::write(&sweep, text).unwrap();
    let results = tmp.path().join("results");
    let out = bench(&[
        "run",
        sweep.to_str().unwrap(),
        "--quiet",
        "--results",
        results.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = std::fs::read_dir(results.join("plugin_sd"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let row = metrics.lines().nth(1).expect("one epoch");
    assert!(
        row.split(',')
            .all(|v| v.parse::<f64>().is_ok_and(f64::is_finite)),
        "{metrics}"
    );
    assert!(run
        .join("policy/pytorch_lora_weights.safetensors")
        .is_file());
    let eval = std::fs::read_to_string(run.join("eval.csv")).unwrap();
    assert!(eval.contains("1,reward_above,"), "{eval}");
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
        err.contains("grad.ron:13:15:")
            && err.contains("`draft` backpropagates through the reward")
            && err.contains("`quadrant` is not differentiable"),
        "{err}"
    );
    assert!(!results.exists(), "nothing is written for an invalid sweep");
}
