//! The DDIM and DDPM transitions equal diffusers' DDIMScheduler/DDPMScheduler steps with SD
//! v1.5's schedule: timesteps, mean, std and the log-density of a sampled x_{t−1}, at 50 and 4
//! steps; first-order SDE-DPM-Solver++ equals diffusers' DPMSolverSinglestepScheduler as
//! ∇-GFlowNet configures it, at all 20 steps (fixtures from tools/fixtures/make_sd_tiny.py).

use crate::common::{max_abs_diff, tensor};
use bench_envs::{LogProbReduction, SamplerConfig, SamplerKind, ScheduleConfig, Scheduler};
use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData};

type B = Flex;
const FILE: &str = "sd_tiny/schedulers.safetensors";

fn rows(file: &str, name: &str) -> Tensor<B, 2> {
    let (v, s) = tensor(file, name);
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
    let scheduler = scheduler(kind, steps, eta);
    let name = if kind == SamplerKind::Ddim {
        "ddim"
    } else {
        "ddpm"
    };
    let prefix = format!("{name}_{steps}");
    assert_timesteps(&scheduler, FILE, &format!("{prefix}_timesteps"));
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
            _ => step.clone(),
        };
        check_step(&scheduler, FILE, &step, &tag, k, &mut worst);
    }
    eprintln!(
        "{prefix} eta {eta}: mean {:.1e}, std {:.1e}, log-prob (rel) {:.1e}",
        worst[0], worst[1], worst[2]
    );
    worst
}

/// Compares step `k` of `scheduler` with the fixture's `{step}_x_t`, `{step}_eps` and
/// `{tag}_{mean,std,prev,log_prob_sum,log_prob_mean}`, raising `worst` (mean, std, relative
/// log-prob errors).
fn check_step(
    scheduler: &Scheduler,
    file: &str,
    step: &str,
    tag: &str,
    k: usize,
    worst: &mut [f64; 3],
) {
    let x = rows(file, &format!("{step}_x_t"));
    let n = x.dims()[0];
    let gaussian = scheduler.transition(x, rows(file, &format!("{step}_eps")), &vec![k; n]);
    let (mean, _) = tensor(file, &format!("{tag}_mean"));
    worst[0] = worst[0].max(max_abs_diff(&values(gaussian.mean.clone()), &mean));
    let (std, _) = tensor(file, &format!("{tag}_std"));
    for s in values(gaussian.std.clone()) {
        worst[1] = worst[1].max((s - std[0]).abs());
    }
    let prev = rows(file, &format!("{tag}_prev"));
    for (reduction, key) in [
        (LogProbReduction::Sum, "sum"),
        (LogProbReduction::Mean, "mean"),
    ] {
        let (expected, _) = tensor(file, &format!("{tag}_log_prob_{key}"));
        let got = values(gaussian.log_prob(prev.clone(), reduction));
        for (g, e) in got.iter().zip(&expected) {
            worst[2] = worst[2].max((g - e).abs() / e.abs().max(1.0));
        }
    }
}

fn scheduler(kind: SamplerKind, steps: usize, eta: f64) -> Scheduler {
    Scheduler::new(SamplerConfig {
        kind,
        eta,
        schedule: ScheduleConfig {
            inference_steps: steps,
            ..ScheduleConfig::default()
        },
        ..SamplerConfig::default()
    })
    .unwrap()
}

fn assert_timesteps(scheduler: &Scheduler, file: &str, name: &str) {
    let (expected, _) = tensor(file, name);
    let ours: Vec<f64> = scheduler
        .schedule()
        .timesteps()
        .iter()
        .map(|&t| t as f64)
        .collect();
    assert_eq!(ours, expected, "{file}: {name}");
}

/// Every step of ∇-GFlowNet's 20-step SDE-DPM-Solver++ MDP, the last (to σ_min) included.
#[test]
fn first_order_sde_dpm_solver_matches_diffusers_singlestep() {
    const DPM: &str = "sd_tiny/sde_dpm_first_order.safetensors";
    let scheduler = scheduler(SamplerKind::SdeDpmSolver, 20, 1.0);
    assert_timesteps(&scheduler, DPM, "timesteps");
    let mut worst = [0.0f64; 3];
    for k in 0..20 {
        assert!(scheduler.transition_std(k) > 0.0, "step {k} has a density");
        let step = k.to_string();
        check_step(&scheduler, DPM, &step, &step, k, &mut worst);
    }
    eprintln!(
        "sde-dpm 1st order: mean {:.1e}, std {:.1e}, log-prob (rel) {:.1e}",
        worst[0], worst[1], worst[2]
    );
    assert!(worst[0] <= 1e-5, "mean error {:.2e}", worst[0]);
    assert!(worst[1] <= 1e-6, "std error {:.2e}", worst[1]);
    assert!(worst[2] <= 1e-4, "log-prob relative error {:.2e}", worst[2]);
}

/// First-order SDE-DPM-Solver++ is the DDPM posterior q(x_{t'} | x_t, x̂₀) between its
/// timesteps: mean √ᾱ'·β/(1 − ᾱ)·x̂₀ + √α·(1 − ᾱ')/(1 − ᾱ)·x_t and variance
/// (1 − ᾱ')/(1 − ᾱ)·β, with α = ᾱ/ᾱ' and β = 1 − α, although the solver computes it from
/// σ ratios (e^{−h} = σ'/σ).
#[test]
fn first_order_sde_dpm_solver_is_the_ddpm_posterior() {
    let scheduler = scheduler(SamplerKind::SdeDpmSolver, 20, 1.0);
    let device = Default::default();
    let x = Tensor::<B, 2>::from_data(TensorData::new(vec![1.5f32, -0.5, 0.25], [3, 1]), &device);
    let eps = Tensor::<B, 2>::from_data(TensorData::new(vec![0.3f32, 1.0, -2.0], [3, 1]), &device);
    let mut worst = 0.0f64;
    for k in 0..20 {
        let s = scheduler.schedule();
        let (a, ap) = (s.alpha_bar(k), s.alpha_bar_prev(k));
        let (alpha, beta) = (a / ap, 1.0 - a / ap);
        let steps = [k; 3];
        let x0 = values(scheduler.predict_x0(x.clone(), eps.clone(), &steps));
        let g = scheduler.transition(x.clone(), eps.clone(), &steps);
        let means = values(g.mean);
        for ((m, x0), x) in means.iter().zip(&x0).zip(values(x.clone())) {
            let expected =
                ap.sqrt() * beta / (1.0 - a) * x0 + alpha.sqrt() * (1.0 - ap) / (1.0 - a) * x;
            worst = worst.max((m - expected).abs());
        }
        let var = (1.0 - ap) / (1.0 - a) * beta;
        for s in values(g.std) {
            worst = worst.max((s - var.sqrt()).abs());
        }
    }
    assert!(worst < 1e-5, "largest difference {worst:.2e}");
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
