//! Rollouts run on the inference backend and record nothing: burn's autodiff keeps a record of
//! every operation until some backward runs, and rollouts never run one, so a rollout on the
//! autodiff backend grew the process by ≈ 50 MB. Alone in its test binary, so that the
//! process's resident memory is this test's.

#![cfg(target_os = "linux")]

use std::path::PathBuf;

use bench_envs::sd::{SdConfig, SdEnv};
use bench_envs::{rollout, Denoiser, DiffusionEnv, SamplerConfig, ScheduleConfig};
use burn::backend::{Autodiff, Flex};
use rand::{rngs::StdRng, SeedableRng};

type B = Autodiff<Flex>;

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// Measured: on the autodiff backend each 50-step CFG rollout of 4 tiny-SD samples kept
/// ≈ 50 MB (300 MiB after the six below); on the inference backend the process does not grow.
#[test]
fn rollouts_do_not_accumulate_autodiff_records() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/sd_tiny");
    let config = SdConfig {
        model: root,
        prompts: vec!["a photo of a cat".into()],
        resolution: 16,
        ..SdConfig::default()
    };
    let sampler = SamplerConfig {
        schedule: ScheduleConfig {
            inference_steps: 50,
            ..ScheduleConfig::default()
        },
        ..SamplerConfig::default()
    };
    let env = SdEnv::<B>::load(config, sampler, Default::default()).unwrap();
    let mut rng = StdRng::seed_from_u64(0);
    // One rollout first: the allocator's and the thread pool's own warm-up.
    let _ = rollout(env.infer(), Denoiser::Base, vec![0; 4], &mut rng).final_states();
    let before = resident_kib();
    for _ in 0..6 {
        let _ = rollout(env.infer(), Denoiser::Base, vec![0; 4], &mut rng).final_states();
    }
    let grown_mib = (resident_kib().saturating_sub(before)) as f64 / 1024.0;
    assert!(
        grown_mib < 40.0,
        "six rollouts grew the process by {grown_mib:.0} MiB"
    );
}
