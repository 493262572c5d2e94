//! The detailed-balance objectives at their exact solution on the toy (`oracle: true`,
//! `exact_flows: true`), where everything is known (shared/research/db-toy-audit.md):
//! bench's δ² per step band equals the values an independent reimplementation computed, and
//! training started there stays there.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use bench::table::collect;

use crate::support::bench_ok;

/// Runs the sweep `text` (its `name` is `name`) into a fresh folder.
fn run_sweep(name: &str, text: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join(format!("{name}.ron"));
    fs::write(&file, text).unwrap();
    bench_ok([
        "run".as_ref(),
        file.as_os_str(),
        "--quiet".as_ref(),
        "--results".as_ref(),
        tmp.path().as_os_str(),
    ]);
    tmp
}

/// The last row of a run's `metrics.csv`, by column.
fn last_epoch_log(run: &Path) -> BTreeMap<String, f64> {
    let text = fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let last: Vec<f64> = lines
        .last()
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    header.into_iter().map(str::to_string).zip(last).collect()
}

/// A run's folder by its reward's name.
fn run_dir(sweep: &Path, reward: &str) -> std::path::PathBuf {
    fs::read_dir(sweep)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .contains(&format!("-{reward}-"))
        })
        .unwrap_or_else(|| panic!("no {reward} run in {}", sweep.display()))
}

#[test]
fn delta2_by_step_band_at_the_exact_solution_equals_the_closed_form() {
    // One epoch of 1024 trajectories with a vanishing learning rate: δ² of the exact policy
    // under the exact flows, 50 DDPM steps (η = 1), summed log-probs, β = 1.
    let tmp = run_sweep(
        "bands",
        r#"Sweep(
            name: "bands",
            env: Toy2d((oracle: true, exact_flows: true)),
            sampler: (log_prob: Sum, guidance: 1.0),
            epochs: 1,
            checkpoint_every: 1,
            eval: (every: 1, samples_per_prompt: 2, target: None, metrics: [(name: "reward")]),
            seeds: [0],
            algorithms: [(name: "dag_db", params: (
                sample_batch: 1024, train_batch: 256, beta: 1.0, beta_anneal: 0.0,
                optim: (lr: 1e-30), flow_optim: (lr: 1e-30),
            ))],
            rewards: [(name: "bump"), (name: "mixture")],
        )"#,
    );
    let sweep = tmp.path().join("bands");
    // Bump: the audit's independent numpy reimplementation (overall 0.076, k ≤ 46 0.0057,
    // k = 47 0.25, k = 48 3.0, k = 49 0.29). Mixture: "similar" there; these are this
    // implementation's values, pinned.
    let expected = [
        ("bump", [0.076, 0.0057, 0.25, 3.0, 0.29]),
        ("mixture", [0.066, 0.0054, 0.17, 2.6, 0.26]),
    ];
    let columns = [
        "db_loss",
        "delta2_early",
        "delta2_third_last",
        "delta2_second_last",
        "delta2_last",
    ];
    for (reward, values) in expected {
        let log = last_epoch_log(&run_dir(&sweep, reward));
        for (column, want) in columns.iter().zip(values) {
            let got = log[*column];
            // ±15 %, and ±25 % on the two bands whose δ² is heavy-tailed.
            let tolerance = if column.ends_with("third_last") || column.ends_with("_last") {
                0.25
            } else {
                0.15
            };
            assert!(
                (got / want - 1.0).abs() <= tolerance,
                "{reward}: {column} = {got}, closed form {want}"
            );
        }
    }
}

#[test]
fn detailed_balance_started_at_the_exact_solution_stays_there() {
    // 200 epochs from the exact policy with the exact flows; each evaluation (500 samples a
    // prompt) is compared with exact samples of the target. The floor, exact ε through the
    // 50-step sampler, is ≈ 0.01 (exp(r)) and ≈ 0.02 (p_base·exp(r)).
    let tmp = run_sweep(
        "kept",
        r#"Sweep(
            name: "kept",
            env: Toy2d((oracle: true, exact_flows: true)),
            sampler: (log_prob: Sum, guidance: 1.0),
            epochs: 200,
            checkpoint_every: 200,
            eval: (every: 50, samples_per_prompt: 500, target: None,
                   metrics: [(name: "exact_target")]),
            seeds: [0],
            algorithms: [
                (name: "dag_db", params: (sample_batch: 64, train_batch: 16, beta: 1.0,
                    beta_anneal: 0.0, optim: (lr: 3e-4))),
                (name: "dag_kl", params: (sample_batch: 64, train_batch: 16, beta: 1.0,
                    beta_anneal: 0.0, clip_range: 0.2, normalize: false, optim: (lr: 3e-4))),
                (name: "residual_db", params: (sample_batch: 64, train_batch: 16, beta: 1.0,
                    beta_anneal: 0.0, look_ahead: Base, optim: (lr: 1e-3))),
            ],
            rewards: [(name: "bump"), (name: "mixture")],
        )"#,
    );
    let sweep = tmp.path().join("kept");
    for epoch in [0, 50, 100, 150, 200] {
        let found = collect(&sweep, Some(epoch)).unwrap();
        assert!(found.problems.is_empty(), "{:?}", found.problems);
        assert_eq!(found.runs.len(), 6);
        for run in found.runs {
            let algorithm = run.config.algorithm.name.clone();
            let bound = if algorithm == "residual_db" {
                0.06
            } else {
                0.02
            };
            let mmd2 = run.metrics()["mmd2"];
            assert!(
                mmd2 <= bound,
                "{algorithm} on {} at epoch {epoch}: MMD² {mmd2} to its target (bound {bound})",
                run.config.reward.name
            );
        }
    }
}
