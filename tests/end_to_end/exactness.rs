//! The toy is exact: the untrained policy samples the base mixture, and the exact target
//! samplers agree with their densities.

use rand::{rngs::StdRng, SeedableRng};

use bench::backend::Backend;
use bench_envs::toy2d::{Toy2d, Toy2dConfig};
use bench_envs::{
    rollout, Denoiser, DiffusionEnv, DiffusionModel, EnvInfo, Environment, LogProbReduction,
    SamplerConfig,
};
use bench_metrics::points::to_points;
use bench_metrics::{mmd2_unbiased, mode_fractions, ModeReport, DEFAULT_BANDWIDTHS};
use bench_models::{GaussianMixture, Point};
use bench_rewards::toy::bump::BumpConfig;
use bench_rewards::toy::mixture_density::MixtureConfig;
use bench_rewards::toy::{Bump, ExactTarget, MixtureDensity, TargetKind};
use burn::module::AutodiffModule;

const N: usize = 1000;

fn env(inference_steps: usize) -> Toy2d<Backend> {
    let mut sampler = SamplerConfig {
        guidance: 1.0,
        log_prob: LogProbReduction::Sum,
        ..SamplerConfig::default()
    };
    sampler.schedule.inference_steps = inference_steps;
    Toy2d::new(Toy2dConfig::default(), sampler, Default::default()).unwrap()
}

/// The largest MMD² among `draws` pairs of independent exact samples of size `n`: what
/// sampling noise alone produces.
fn null_mmd2_max(sample: impl Fn(&mut StdRng) -> Vec<Point>, draws: u64) -> f64 {
    (0..draws)
        .map(|i| {
            let mut rng = StdRng::seed_from_u64(1000 + i);
            mmd2_unbiased(&sample(&mut rng), &sample(&mut rng), &DEFAULT_BANDWIDTHS)
        })
        .fold(f64::NEG_INFINITY, f64::max)
}

/// MMD² of the untrained policy's samples to exact base samples, per prompt, with the
/// largest MMD² that sampling noise alone gives between two exact samples.
fn base_mmd2(inference_steps: usize) -> Vec<(f64, f64)> {
    let env = env(inference_steps);
    let mut rng = StdRng::seed_from_u64(7);
    let policy = env.init_policy(&mut rng).valid();
    (0..env.prompts().len())
        .map(|prompt| {
            let base = env.base_distribution(prompt);
            let x0 = rollout(
                env.infer(),
                Denoiser::Policy(&policy),
                vec![prompt; N],
                &mut rng,
            )
            .final_states();
            let samples = to_points(&env.infer().decode(x0));
            let fractions = mode_fractions(&samples, &base);
            // Every mode holds its weight within 4 binomial standard deviations.
            let w = 1.0 / base.len() as f64;
            let tolerance = 4.0 * (w * (1.0 - w) / N as f64).sqrt();
            for (k, f) in fractions.iter().enumerate() {
                assert!(
                    (f - w).abs() < tolerance,
                    "prompt {prompt} mode {k}: {f} vs {w}"
                );
            }
            let exact = base.sample(N, &mut rng);
            let mmd2 = mmd2_unbiased(&samples, &exact, &DEFAULT_BANDWIDTHS);
            (mmd2, null_mmd2_max(|r| base.sample(N, r), 20))
        })
        .collect()
}

#[test]
fn untrained_policy_samples_the_base_mixture_to_sampling_noise() {
    // With a fine schedule the sampler is exact: its MMD² is within what two exact samples
    // of the same size show (the largest of 20 such draws, with 1.5× slack).
    for (prompt, (mmd2, null)) in base_mmd2(250).into_iter().enumerate() {
        assert!(
            mmd2 < 1.5 * null,
            "prompt {prompt}: MMD² {mmd2:.5}, noise up to {null:.5}"
        );
    }
}

#[test]
fn fifty_step_sampler_has_only_a_small_discretisation_bias() {
    // SD's 50-step schedule: measured MMD² ≈ 0.005 against a noise level ≈ 0.002 (it falls
    // to noise level at 200 steps, see the test above).
    for (prompt, (mmd2, null)) in base_mmd2(50).into_iter().enumerate() {
        assert!(
            mmd2 < 5.0 * null,
            "prompt {prompt}: MMD² {mmd2:.5}, noise up to {null:.5}"
        );
    }
}

fn ring_base() -> GaussianMixture {
    GaussianMixture::ring(8, 1.0, 0.1)
}

#[test]
fn grid_targets_agree_with_closed_form_targets() {
    let bump = Bump::new(BumpConfig::default()).unwrap();
    let base = ring_base();
    for (kind, beta) in [(TargetKind::Power, 2.0), (TargetKind::Tilted, 3.0)] {
        let target = ExactTarget::new(kind, &base, &bump, beta);
        let closed = target
            .closed_form()
            .expect("the bump's targets are closed form")
            .clone();
        let mut rng = StdRng::seed_from_u64(3);
        let from_grid = target.grid().sample(N, &mut rng);
        let from_mixture = closed.sample(N, &mut rng);
        let mmd2 = mmd2_unbiased(&from_grid, &from_mixture, &DEFAULT_BANDWIDTHS);
        let null = null_mmd2_max(|r| closed.sample(N, r), 20);
        assert!(
            mmd2 < 1.5 * null,
            "{kind:?}: grid vs closed form MMD² {mmd2} (noise {null})"
        );
        // The grid's mode weights equal the closed form's mass per labelled region, up to
        // the Monte Carlo error of 100k exact samples.
        let many = closed.sample(100_000, &mut rng);
        let mc = mode_fractions(&many, target.modes());
        let report = ModeReport::new(&mc, target.mode_weights());
        assert!(
            report.total_variation < 0.01,
            "{kind:?}: TV {}",
            report.total_variation
        );
    }
}

#[test]
fn tilted_bump_target_is_the_pointwise_product() {
    let bump = Bump::new(BumpConfig::default()).unwrap();
    let base = ring_base();
    let beta = 2.0;
    let target = ExactTarget::new(TargetKind::Tilted, &base, &bump, beta);
    use bench_rewards::ToyReward;
    let log_ratio = |x: Point| target.density(x).ln() - base.log_density(x) - beta * bump.value(x);
    let r0 = log_ratio([1.0, 0.0]);
    for x in [[0.0, 1.0], [-0.7, 0.7], [0.5, -0.9]] {
        assert!((log_ratio(x) - r0).abs() < 1e-8);
    }
}

#[test]
fn grid_target_sampler_matches_its_density() {
    // exp(β·r) of the mixture reward at β = 2 has no closed form: check the grid sampler
    // against the tabulated density with a χ² test on 10×10 coarse bins.
    let reward = MixtureDensity::new(MixtureConfig::default()).unwrap();
    let target = ExactTarget::new(TargetKind::Power, &ring_base(), &reward, 2.0);
    assert!(target.closed_form().is_none());
    let mut rng = StdRng::seed_from_u64(11);
    let n = 50_000;
    let samples = target.grid().sample(n, &mut rng);
    let (lo, hi) = (-2.0, 2.0);
    let bin = |x: Point| -> Option<usize> {
        let i = ((x[0] - lo) / (hi - lo) * 10.0).floor();
        let j = ((x[1] - lo) / (hi - lo) * 10.0).floor();
        (i >= 0.0 && j >= 0.0 && i < 10.0 && j < 10.0).then(|| i as usize * 10 + j as usize)
    };
    let mut expected = vec![0.0; 100];
    for (x, m) in target.grid().cells() {
        if let Some(b) = bin(x) {
            expected[b] += m * n as f64;
        }
    }
    let mut observed = vec![0.0; 100];
    for &x in &samples {
        if let Some(b) = bin(x) {
            observed[b] += 1.0;
        }
    }
    let (mut chi2, mut dof) = (0.0, 0);
    for b in 0..100 {
        if expected[b] >= 5.0 {
            chi2 += (observed[b] - expected[b]).powi(2) / expected[b];
            dof += 1;
        }
    }
    // χ² with `dof` degrees of freedom: mean dof, sd √(2·dof); 5 sd is a 1e-6 tail.
    let bound = dof as f64 + 5.0 * (2.0 * dof as f64).sqrt();
    assert!(chi2 < bound, "χ² {chi2} over {dof} bins (bound {bound})");
    // And the mode weights follow the reward's peaks: 0.5 > 0.3 > 0.2 sharpened by β = 2.
    let w = target.mode_weights();
    assert!(w[0] > w[1] && w[1] > w[2], "{w:?}");
}
