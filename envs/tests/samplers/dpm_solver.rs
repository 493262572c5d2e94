//! DPM-Solver++ (2M) and SDE-DPM-Solver++ (2M) equal diffusers' 0.31.0
//! `DPMSolverMultistepScheduler` with SD's betas at 20 steps: timesteps, sigmas, every step's
//! sample and, for the SDE, every step's log-density (fixtures from
//! tools/fixtures/make_sd_tiny.py, `scheduler_fixtures`).

use crate::common::{max_abs_diff, tensor};
use bench_envs::{DpmSolver, DpmSolverKind, LogProbReduction, ScheduleConfig};
use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData};

type B = Flex;
const FILE: &str = "sd_tiny/schedulers.safetensors";
const STEPS: usize = 20;
const HALF_LOG_2PI: f64 = 0.918_938_533_204_672_7;

/// A fixture tensor whose first axis is the batch, flattened to `[N, D]`.
fn rows(name: &str) -> Tensor<B, 2> {
    let (v, s) = tensor(FILE, name);
    let v: Vec<f32> = v.into_iter().map(|x| x as f32).collect();
    let n = s[0];
    let d = v.len() / n;
    Tensor::from_data(TensorData::new(v, [n, d]), &Default::default())
}

/// Step `i` of a `[STEPS, N, …]` fixture as `[N, D]`.
fn at_step(name: &str, i: usize) -> Tensor<B, 2> {
    let (v, s) = tensor(FILE, name);
    assert_eq!(s[0], STEPS, "{name}");
    let n = s[1];
    let d: usize = s[2..].iter().product();
    let v: Vec<f32> = v[i * n * d..(i + 1) * n * d]
        .iter()
        .map(|&x| x as f32)
        .collect();
    Tensor::from_data(TensorData::new(v, [n, d]), &Default::default())
}

fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().iter::<f32>().map(f64::from).collect()
}

fn solver(kind: DpmSolverKind) -> DpmSolver {
    DpmSolver::new(
        kind,
        &ScheduleConfig {
            inference_steps: STEPS,
            ..ScheduleConfig::default()
        },
    )
    .unwrap()
}

fn prefix(kind: DpmSolverKind) -> &'static str {
    match kind {
        DpmSolverKind::Ode => "dpmpp",
        DpmSolverKind::Sde => "sde_dpmpp",
    }
}

/// Runs all steps, feeding each step either diffusers' previous sample (`teacher_forced`, to
/// measure one step's error) or our own (to measure the accumulated error of a whole run), with
/// the recorded ε and noise. Returns the worst |ours − diffusers'| over all samples.
fn run(kind: DpmSolverKind, teacher_forced: bool) -> f64 {
    let s = solver(kind);
    let p = prefix(kind);
    let mut x = rows(&format!("{p}_x_init"));
    let mut prev_x0 = None;
    let mut worst = 0.0f64;
    for i in 0..STEPS {
        let eps = at_step(&format!("{p}_model_outputs"), i);
        let (gaussian, x0) = s.transition(x.clone(), eps, i, prev_x0);
        let next = match kind {
            DpmSolverKind::Sde => gaussian.sample(at_step(&format!("{p}_noise"), i)),
            DpmSolverKind::Ode => {
                // No noise at all: the transition must be a point mass.
                assert!(values(gaussian.std.clone()).iter().all(|&v| v == 0.0));
                gaussian.mean
            }
        };
        let expected = at_step(&format!("{p}_samples"), i);
        let err = max_abs_diff(&values(next.clone()), &values(expected.clone()));
        worst = worst.max(err);
        x = if teacher_forced { expected } else { next };
        prev_x0 = Some(x0);
    }
    worst
}

#[test]
fn timesteps_and_sigmas_match_diffusers() {
    for kind in [DpmSolverKind::Ode, DpmSolverKind::Sde] {
        let s = solver(kind);
        let p = prefix(kind);
        let (timesteps, _) = tensor(FILE, &format!("{p}_timesteps"));
        let ours: Vec<f64> = s.timesteps().iter().map(|&t| t as f64).collect();
        assert_eq!(ours, timesteps, "{p}");
        let (sigmas, _) = tensor(FILE, &format!("{p}_sigmas"));
        assert_eq!(s.sigmas().len(), sigmas.len(), "{p}");
        assert_eq!(*s.sigmas().last().unwrap(), 0.0);
        assert_eq!(*sigmas.last().unwrap(), 0.0);
        let worst = s
            .sigmas()
            .iter()
            .zip(&sigmas)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1e-12))
            .fold(0.0, f64::max);
        eprintln!("{p}: sigmas max relative error {worst:.1e}");
        // Measured: 2.7e-6. diffusers' sigmas come from an f32 ᾱ (f32 β, cumprod); ours from
        // the f64 schedule (emulating torch's f32 linspace/cumprod gets 2e-7 but was not worth it).
        assert!(worst <= 1e-5, "{p}: sigma relative error {worst:.2e}");
    }
}

/// `linspace` rounds half to even (numpy's `round`) and ignores `steps_offset`; bad step counts
/// are refused.
#[test]
fn linspace_timesteps_and_errors() {
    let s = DpmSolver::new(
        DpmSolverKind::Ode,
        &ScheduleConfig {
            inference_steps: 4,
            ..ScheduleConfig::default()
        },
    )
    .unwrap();
    // linspace(0, 999, 5) = 0, 249.75, 499.5, 749.25, 999.
    assert_eq!(s.timesteps(), &[999, 749, 500, 250]);
    for steps in [0, 1001] {
        let config = ScheduleConfig {
            inference_steps: steps,
            ..ScheduleConfig::default()
        };
        assert!(DpmSolver::new(DpmSolverKind::Sde, &config).is_err());
    }
}

/// The samples reach |x| ≈ 45 (ODE) and 65 (SDE) since the recorded ε are random, where one
/// f32 ulp is 3.8e-6 and 7.6e-6. Measured: one step (teacher forced) within 7.6e-6 (ODE) and
/// 1.1e-5 (SDE), about one ulp; the whole 20-step run within 4.6e-5 (ODE) and 6.5e-5 (SDE),
/// ~1e-6 relative.
#[test]
fn ode_samples_match_diffusers() {
    let one = run(DpmSolverKind::Ode, true);
    let all = run(DpmSolverKind::Ode, false);
    eprintln!("dpmpp: step max abs error {one:.1e}, free-running {all:.1e}");
    assert!(one <= 2e-5, "one step: {one:.2e}");
    assert!(all <= 1e-4, "whole run: {all:.2e}");
    let s = solver(DpmSolverKind::Ode);
    assert!((0..STEPS).all(|i| !s.has_density(i) && s.transition_std(i) == 0.0));
    // The multistep history matters: step 5 without it (1st order) misses diffusers' sample.
    let x = at_step("dpmpp_samples", 4);
    let (g, _) = s.transition(x, at_step("dpmpp_model_outputs", 5), 5, None);
    let first_order = max_abs_diff(&values(g.mean), &values(at_step("dpmpp_samples", 5)));
    assert!(
        first_order > 1e-2,
        "1st-order step 5 off by only {first_order:.2e}"
    );
}

/// Measured: see `ode_samples_match_diffusers`.
#[test]
fn sde_samples_match_diffusers() {
    let one = run(DpmSolverKind::Sde, true);
    let all = run(DpmSolverKind::Sde, false);
    eprintln!("sde_dpmpp: step max abs error {one:.1e}, free-running {all:.1e}");
    assert!(one <= 2e-5, "one step: {one:.2e}");
    assert!(all <= 1e-4, "whole run: {all:.2e}");
}

/// The log-density of diffusers' sample under our transition equals the Gaussian density of the
/// recorded noise, computed here from diffusers' sigmas: −½‖z‖² − D·log std − D/2·log 2π with
/// std = s_{i+1}·√(1 − (σ_{i+1}/σ_i)²), s = σ/√(σ² + 1). The last step has std 0 and no density.
#[test]
fn sde_log_probs_match_recorded_noise() {
    let s = solver(DpmSolverKind::Sde);
    let (sigmas, _) = tensor(FILE, "sde_dpmpp_sigmas");
    let mut x = rows("sde_dpmpp_x_init");
    let mut prev_x0 = None;
    let (mut worst_lp, mut worst_std) = (0.0f64, 0.0f64);
    for i in 0..STEPS {
        let eps = at_step("sde_dpmpp_model_outputs", i);
        let (gaussian, x0) = s.transition(x, eps, i, prev_x0);
        let sample = at_step("sde_dpmpp_samples", i);
        let std = values(gaussian.std.clone());
        let (sigma, next) = (sigmas[i], sigmas[i + 1]);
        let expected_std =
            next / (next * next + 1.0).sqrt() * (1.0 - (next / sigma).powi(2)).sqrt();
        for v in &std {
            worst_std = worst_std.max((v - expected_std).abs() / expected_std.max(1e-12));
        }
        if i + 1 == STEPS {
            assert_eq!(expected_std, 0.0);
            assert!(std.iter().all(|&v| v == 0.0), "last step std {std:?}");
            assert!(!s.has_density(i));
            assert_eq!(s.transition_std(i), 0.0);
            // The last step returns x̂₀ itself, ignoring the noise.
            let err = max_abs_diff(&values(gaussian.mean), &values(sample.clone()));
            assert!(err <= 1e-5, "last step: {err:.2e}");
        } else {
            assert!(s.has_density(i) && s.transition_std(i) > 0.0, "step {i}");
            let got = values(gaussian.log_prob(sample.clone(), LogProbReduction::Sum));
            let z = values(at_step("sde_dpmpp_noise", i));
            let d = z.len() / got.len();
            for (row, g) in got.iter().enumerate() {
                let sq: f64 = z[row * d..(row + 1) * d].iter().map(|v| v * v).sum();
                let e = -0.5 * sq - d as f64 * (expected_std.ln() + HALF_LOG_2PI);
                worst_lp = worst_lp.max((g - e).abs() / e.abs().max(1.0));
            }
        }
        x = sample;
        prev_x0 = Some(x0);
    }
    eprintln!("sde_dpmpp: std relative error {worst_std:.1e}, log-prob relative {worst_lp:.1e}");
    // Measured: std within 1.8e-6 relative (the sigmas'), log-probs within 3.0e-5 relative.
    assert!(worst_std <= 1e-5, "std relative error {worst_std:.2e}");
    assert!(worst_lp <= 1e-4, "log-prob relative error {worst_lp:.2e}");
}
