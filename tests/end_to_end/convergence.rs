//! The claims of `configs/toy_all.ron`, checked on its own budget (fixed seeds 0–2; runs are
//! deterministic): every distribution-matching objective ends closer to its own exact target
//! than the base model and keeps the multi-modal target's modes; reward maximisers and
//! reward-gradient methods gain reward and lose modes.
//!
//! Runs `bench run configs/toy_all.ron` (60 runs; a few minutes in the test profile).

use std::collections::BTreeMap;
use std::path::Path;

use bench::table::{collect, Collected};

use crate::support::bench_ok;

type Key = (String, String, u64);

fn by_run(found: Collected) -> BTreeMap<Key, BTreeMap<String, f64>> {
    assert!(found.problems.is_empty(), "{:?}", found.problems);
    found
        .runs
        .into_iter()
        .map(|r| {
            (
                (
                    r.config.algorithm.label().to_string(),
                    r.config.reward.name.clone(),
                    r.config.seed,
                ),
                r.metrics(),
            )
        })
        .collect()
}

const MATCHERS: [&str; 5] = [
    "dag_db",
    "dag_kl",
    "residual_db",
    "nabla_gfn",
    "nabla_gfn_wb0",
];
const MAXIMISERS: [&str; 4] = ["ddpo", "refl", "draft", "draft_lv"];

#[test]
fn toy_all_separates_distribution_matching_from_reward_maximisation() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/toy_all.ron");
    bench_ok([
        "run".as_ref(),
        sweep.as_os_str(),
        "--quiet".as_ref(),
        "--results".as_ref(),
        tmp.path().as_os_str(),
    ]);
    let dir = tmp.path().join("toy_all");
    let initial = by_run(collect(&dir, Some(0)).unwrap());
    let last = by_run(collect(&dir, None).unwrap());
    assert_eq!(last.len(), 60, "10 objectives × 2 rewards × 3 seeds");
    let get = |table: &BTreeMap<Key, BTreeMap<String, f64>>, a: &str, r: &str, s: u64, m: &str| {
        table[&(a.to_string(), r.to_string(), s)][m]
    };

    // MMD² noise at 500 samples per prompt is ≈ 0.002 (tests/end_to_end/exactness.rs).
    let gap = |m: &str, reward: &str, seed: u64| {
        get(&initial, m, reward, seed, "mmd2") - get(&last, m, reward, seed, "mmd2")
    };
    for m in MATCHERS {
        for seed in 0..3 {
            // Measured gaps: 0.07–0.49 on the bump, 0.07–0.17 for the residual objectives on
            // the mixture.
            let rewards: &[&str] = if m.starts_with("dag") {
                &["bump"]
            } else {
                &["bump", "mixture"]
            };
            for reward in rewards {
                assert!(
                    gap(m, reward, seed) > 0.02,
                    "{m} on {reward}, seed {seed}: MMD² gap to the base {}",
                    gap(m, reward, seed)
                );
            }
        }
    }
    // DAG-DB and DAG-KL towards exp(r) on the mixture sit on a noisy plateau (issue 2): seeds
    // 0 and 1 gain 0.02–0.04, seed 2 ends 0.008–0.023 above its base. Their seed mean gains.
    for m in ["dag_db", "dag_kl"] {
        let mean = (0..3).map(|s| gap(m, "mixture", s)).sum::<f64>() / 3.0;
        assert!(mean > 0.005, "{m} on the mixture: mean MMD² gap {mean}");
    }

    for seed in 0..3 {
        // Every mode of the multi-modal targets is kept (residual DB is the exception: see
        // README, it keeps 4–6 of 6 within this budget).
        for m in ["dag_db", "dag_kl", "nabla_gfn", "nabla_gfn_wb0"] {
            assert_eq!(
                get(&last, m, "mixture", seed, "modes_covered"),
                get(&last, m, "mixture", seed, "modes_total"),
                "{m}, seed {seed}: modes of the mixture target"
            );
        }
        // Maximisers beat DAG-DB's reward and keep fewer of exp(r)'s modes.
        let dag_reward = get(&last, "dag_db", "mixture", seed, "reward");
        let dag_modes = get(&last, "dag_db", "mixture", seed, "modes_covered");
        for m in MAXIMISERS {
            let reward = get(&last, m, "mixture", seed, "reward");
            assert!(
                reward > dag_reward + 0.5,
                "{m}, seed {seed}: reward {reward} vs DAG-DB {dag_reward}"
            );
            let modes = get(&last, m, "mixture", seed, "modes_covered");
            assert!(
                modes < dag_modes,
                "{m}, seed {seed}: {modes} modes vs DAG-DB {dag_modes}"
            );
        }
    }
}
