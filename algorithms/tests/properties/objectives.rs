//! Properties of the objectives at points where their value is known exactly.

use burn::backend::{Autodiff, Flex};
use rand::{rngs::StdRng, SeedableRng};

use bench_algorithms::{build, builtin_algorithms, Context, Scalars};
use bench_envs::toy2d::{Toy2d, Toy2dConfig};
use bench_envs::{LogProbReduction, SamplerConfig};
use bench_rewards::{builtin_reward, Reward};

type B = Autodiff<Flex>;

fn env() -> Toy2d<B> {
    Toy2d::new(
        Toy2dConfig::default(),
        SamplerConfig {
            guidance: 1.0,
            log_prob: LogProbReduction::Sum,
            ..SamplerConfig::default()
        },
        Default::default(),
    )
    .unwrap()
}

/// One epoch of `name` with `params` on the toy with the bump reward.
fn first_epoch(name: &str, params: &str) -> Scalars {
    epochs_on(name, params, 1, 1).remove(0)
}

/// `epochs` epochs of `name` with `params` on the toy with the bump reward, data-parallel on
/// `devices` copies of the environment (on the one CPU device: the sharding is what is tested).
fn epochs_on(name: &str, params: &str, devices: usize, epochs: usize) -> Vec<Scalars> {
    let env = env();
    let copies: Vec<Toy2d<B>> = (1..devices).map(|_| self::env()).collect();
    let replicas: Vec<&Toy2d<B>> = copies.iter().collect();
    let reward = builtin_reward::<B>("bump", &Default::default()).unwrap();
    let more: Vec<Box<dyn Reward<B>>> = copies
        .iter()
        .map(|_| builtin_reward::<B>("bump", &Default::default()).unwrap())
        .collect();
    let replica_rewards: Vec<&dyn Reward<B>> = more.iter().map(AsRef::as_ref).collect();
    let mut rng = StdRng::seed_from_u64(0);
    let mut algorithm = build(&builtin_algorithms(), name, params, &env, &mut rng).unwrap();
    (0..epochs)
        .map(|epoch| {
            algorithm
                .train_epoch(&Context {
                    env: &env,
                    replicas: &replicas,
                    reward: reward.as_ref(),
                    replica_rewards: &replica_rewards,
                    epoch,
                    epochs,
                    seed: 0,
                })
                .unwrap()
        })
        .collect()
}

#[test]
fn data_parallel_epochs_equal_one_devices() {
    // Uneven shards on purpose: 9 trajectories over 2 and 3 devices, minibatches of 6 and 3.
    // DDPO, DPOK, DAG-DB, DAG-KL (its leave-one-out baseline computed across the shards) and
    // ∇-GFlowNet (its reward differentiated on each device, its smoothing noise drawn for the
    // whole minibatch) shard their steps too, and ReFL and DRaFT their differentiable sampling
    // (each device replaying the whole batch's draws). The clip range is wide:
    // DDPO's 1e-4 counts as clipped ratios within float noise of 1 (the rollout's batch and the
    // step's differ), which a different split of the rows reshuffles.
    for (name, params) in [
        (
            "ddpo",
            "(sample_batch: 9, train_batch: 6, inner_epochs: 2, clip_range: 0.2)",
        ),
        ("dpok", "(sample_batch: 9, train_batch: 6, clip_range: 0.2)"),
        ("dag_db", "(sample_batch: 9, train_batch: 6, beta: 1.0)"),
        ("dag_kl", "(sample_batch: 9, train_batch: 6, beta: 1.0)"),
        ("nabla_gfn", "(sample_batch: 9, train_batch: 6, beta: 1.0)"),
        ("refl", "(batch: 9, updates: 2, optim: (lr: 1e-2))"),
        ("draft", "(k: 3, batch: 9, updates: 2, optim: (lr: 1e-2))"),
        (
            "draft_lv",
            "(lv_samples: 2, batch: 9, updates: 2, optim: (lr: 1e-2))",
        ),
    ] {
        let one = epochs_on(name, params, 1, 2);
        for devices in [2, 3] {
            let many = epochs_on(name, params, devices, 2);
            for (a, b) in one.iter().flatten().zip(many.iter().flatten()) {
                assert_eq!(a.0, b.0);
                assert!(
                    (a.1 - b.1).abs() <= 1e-4 * (1.0 + a.1.abs()),
                    "{name} on {devices} devices: {} {} vs {}",
                    a.0,
                    a.1,
                    b.1
                );
            }
        }
    }
}

fn get(s: &Scalars, key: &str) -> f64 {
    s.iter().find(|(k, _)| k == key).unwrap().1
}

#[test]
fn tilted_db_vanishes_at_its_exact_solution() {
    // With p_B = the base denoiser and β = 0, the untrained policy (= base) and the
    // zero-initialised flow satisfy detailed balance exactly: every residual is 0.
    let s = first_epoch(
        "dag_db",
        "(sample_batch: 16, train_batch: 16, beta: 0.0, beta_anneal: 0.0, tilted: true)",
    );
    assert!(get(&s, "db_loss") < 1e-10, "{s:?}");
    // With a reward the same state is not a solution.
    let s = first_epoch(
        "dag_db",
        "(sample_batch: 16, train_batch: 16, beta: 1.0, beta_anneal: 0.0, tilted: true)",
    );
    assert!(get(&s, "db_loss") > 1e-3, "{s:?}");
}

#[test]
fn ddpo_first_minibatch_is_on_policy() {
    // One minibatch per epoch: the ratios are exactly 1, so nothing is clipped.
    let s = first_epoch(
        "ddpo",
        "(sample_batch: 16, train_batch: 16, clip_range: 0.2)",
    );
    assert!(get(&s, "approx_kl") < 1e-10, "{s:?}");
    assert_eq!(get(&s, "clipfrac"), 0.0);
}

#[test]
fn residual_bands_partition_the_balance_loss() {
    // Two equal minibatches: db_loss is the mean δ² over all 16 × 50 transitions, which the
    // bands split into the first 47 positions and each of the last three.
    for name in ["dag_db", "dag_kl", "residual_db"] {
        let s = first_epoch(name, "(sample_batch: 16, train_batch: 8, beta: 1.0)");
        let whole = (47.0 * get(&s, "delta2_early")
            + get(&s, "delta2_third_last")
            + get(&s, "delta2_second_last")
            + get(&s, "delta2_last"))
            / 50.0;
        // (DAG-KL's db_loss is its flow loss: the same residual, the policy detached.)
        let loss = get(&s, "db_loss");
        assert!((whole - loss).abs() <= 1e-4 * loss.abs(), "{name}: {s:?}");
        if name != "residual_db" {
            // Against the noising kernel the last steps cannot balance (the audit's finding).
            assert!(
                get(&s, "delta2_second_last") > 5.0 * get(&s, "delta2_early"),
                "{name}: {s:?}"
            );
        }
    }
}

#[test]
fn sub_trajectory_balances_vanish_at_the_tilted_exact_solution() {
    // As for tilted DB: with β = 0 the base policy and a zero flow balance every
    // sub-trajectory; with a reward they do not.
    for name in ["dag_tb", "dag_subtb"] {
        let at = |beta: f64| {
            get(
                &first_epoch(
                    name,
                    &format!(
                        "(sample_batch: 16, train_batch: 16, beta: {beta}, beta_anneal: 0.0, \
                         tilted: true)"
                    ),
                ),
                "db_loss",
            )
        };
        assert!(at(0.0) < 1e-10, "{name}");
        assert!(at(1.0) > 1e-3, "{name}");
    }
}
