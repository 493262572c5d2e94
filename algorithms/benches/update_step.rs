//! One update of each objective on `toy2d`: one epoch whose sample batch is one training
//! batch, so that a regression in any objective's step shows. `cargo bench -p
//! bench-algorithms`.

use burn::backend::{Autodiff, Flex};
use criterion::{criterion_group, criterion_main, Criterion};
use rand::{rngs::StdRng, SeedableRng};

use bench_algorithms::{build, builtin_algorithms, Context};
use bench_envs::toy2d::{Toy2d, Toy2dConfig};
use bench_envs::{LogProbReduction, SamplerConfig};
use bench_rewards::builtin_reward;

type B = Autodiff<Flex>;

/// Each objective with one optimizer step of 16 trajectories (or samples) per epoch.
const OBJECTIVES: [(&str, &str); 9] = [
    ("ddpo", "(sample_batch: 16, train_batch: 16)"),
    ("dpok", "(sample_batch: 16, train_batch: 16)"),
    ("dag_db", "(sample_batch: 16, train_batch: 16, beta: 1.0)"),
    ("dag_kl", "(sample_batch: 16, train_batch: 16, beta: 1.0)"),
    (
        "residual_db",
        "(sample_batch: 16, train_batch: 16, beta: 1.0)",
    ),
    (
        "nabla_gfn",
        "(sample_batch: 16, train_batch: 16, beta: 1.0)",
    ),
    ("refl", "(batch: 16, updates: 1)"),
    ("draft", "(batch: 16, updates: 1)"),
    ("draft_lv", "(batch: 16, updates: 1)"),
];

fn update_step(c: &mut Criterion) {
    let env = Toy2d::<B>::new(
        Toy2dConfig::default(),
        SamplerConfig {
            guidance: 1.0,
            log_prob: LogProbReduction::Sum,
            ..SamplerConfig::default()
        },
        Default::default(),
    )
    .unwrap();
    let reward = builtin_reward::<B>("mixture", &Default::default()).unwrap();
    let mut group = c.benchmark_group("update_step");
    group.sample_size(10);
    for (name, params) in OBJECTIVES {
        let mut algorithm = build(
            &builtin_algorithms(),
            name,
            params,
            &env,
            &mut StdRng::seed_from_u64(0),
        )
        .unwrap();
        let mut epoch = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                epoch += 1;
                algorithm
                    .train_epoch(&Context {
                        env: &env,
                        replicas: &[],
                        replica_rewards: &[],
                        reward: reward.as_ref(),
                        epoch,
                        epochs: 1_000_000,
                        seed: 0,
                    })
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, update_step);
criterion_main!(benches);
