//! The DDIM and DDPM transitions equal diffusers' DDIMScheduler/DDPMScheduler steps with SD
//! v1.5's schedule: timesteps, mean, std and the log-density of a sampled x_{t−1}, at 50 and 4
//! steps (fixtures from tools/fixtures/make_sd_tiny.py).

use crate::common::{max_abs_diff, tensor};
use bench_envs::{LogProbReduction, SamplerConfig, SamplerKind, ScheduleConfig, Scheduler};
use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData};

type B = Flex;
const FILE: &str = "sd_tiny/schedulers.safetensors";

fn rows(name: &str) -> Tensor<B, 2> {
    let (v, s) = tensor(FILE, name);
    let v: Vec<f32> = v.into_iter().map(|x| x as f32).collect();
    let n = s[0];
    let d = v.len() / n;
    Tensor::from_data(TensorData::new(v, [n, d]), &Default::default())
}

fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().iter::<f32>().map(f64::from).collect()
}

/// Checks every recorded step of `kind` with `steps` inference steps; returns the worst
/// (mean, std, log-prob relative) errors. The fixture's std is diffusers' step with unit noise
/// minus its step with none, so it carries the f32 rounding of values of order 1 (≈ 1e-7).
fn check(kind: SamplerKind, steps: usize, eta: f64) -> [f64; 3] {
    let scheduler = Scheduler::new(SamplerConfig {
        kind,
        eta,
        schedule: ScheduleConfig {
            inference_steps: steps,
            ..ScheduleConfig::default()
        },
        ..SamplerConfig::default()
    })
    .unwrap();
    let name = if kind == SamplerKind::Ddim {
        "ddim"
    } else {
        "ddpm"
    };
    let prefix = format!("{name}_{steps}");
    let (timesteps, _) = tensor(FILE, &format!("{prefix}_timesteps"));
    let ours: Vec<f64> = scheduler
        .schedule()
        .timesteps()
        .iter()
        .map(|&t| t as f64)
        .collect();
    assert_eq!(ours, timesteps, "{prefix}");
    let (picks, _) = tensor(FILE, &format!("{prefix}_step_indices"));
    let mut worst = [0.0f64; 3];
    for k in picks.into_iter().map(|k| k as usize) {
        // Our DDPM ends at ᾱ₀ where diffusers' ends at ᾱ = 1 (see SamplerKind::Ddpm).
        if kind == SamplerKind::Ddpm && k + 1 == steps {
            continue;
        }
        let step = format!("{prefix}_{k}");
        let tag = match kind {
            SamplerKind::Ddim => format!("{step}_eta{eta:.1}"),
            SamplerKind::Ddpm => step.clone(),
        };
        let x = rows(&format!("{step}_x_t"));
        let n = x.dims()[0];
        let gaussian = scheduler.transition(x, rows(&format!("{step}_eps")), &vec![k; n]);
        let (mean, _) = tensor(FILE, &format!("{tag}_mean"));
        worst[0] = worst[0].max(max_abs_diff(&values(gaussian.mean.clone()), &mean));
        let (std, _) = tensor(FILE, &format!("{tag}_std"));
        for s in values(gaussian.std.clone()) {
            worst[1] = worst[1].max((s - std[0]).abs());
        }
        let prev = rows(&format!("{tag}_prev"));
        for (reduction, key) in [
            (LogProbReduction::Sum, "sum"),
            (LogProbReduction::Mean, "mean"),
        ] {
            let (expected, _) = tensor(FILE, &format!("{tag}_log_prob_{key}"));
            let got = values(gaussian.log_prob(prev.clone(), reduction));
            for (g, e) in got.iter().zip(&expected) {
                worst[2] = worst[2].max((g - e).abs() / e.abs().max(1.0));
            }
        }
    }
    eprintln!(
        "{prefix} eta {eta}: mean {:.1e}, std {:.1e}, log-prob (rel) {:.1e}",
        worst[0], worst[1], worst[2]
    );
    worst
}

/// Measured: means within 3.3e-6, std within 3.0e-7, log-probs within 4.5e-6 relative.
#[test]
fn ddim_and_ddpm_steps_match_diffusers() {
    for (kind, eta) in [
        (SamplerKind::Ddim, 1.0),
        (SamplerKind::Ddim, 0.5),
        (SamplerKind::Ddpm, 1.0),
    ] {
        for steps in [50, 4] {
            let [mean, std, log_prob] = check(kind, steps, eta);
            assert!(
                mean <= 1e-5,
                "{kind:?} {steps} steps: mean error {mean:.2e}"
            );
            assert!(std <= 1e-6, "{kind:?} {steps} steps: std error {std:.2e}");
            assert!(
                log_prob <= 1e-4,
                "{kind:?} {steps} steps: log-prob relative error {log_prob:.2e}"
            );
        }
    }
}
