//! Sampler transitions are exact Gaussians, and the toy's base ε is the exact one.

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Tensor, TensorData};
use statrs::distribution::{Continuous, Normal};

use bench_envs::toy2d::{exact_eps::ExactEps, scenes, Toy2d, Toy2dConfig};
use bench_envs::{
    Denoiser, DiffusionEnv, DiffusionModel, Environment, LogProbReduction, SamplerConfig,
    SamplerKind, Scheduler,
};
use bench_models::GaussianMixture;
use burn::module::AutodiffModule;

type B = Autodiff<Flex>;

fn tensor(rows: &[[f32; 3]]) -> Tensor<B, 2> {
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), 3]), &Default::default())
}

fn to_vec<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().unwrap()
}

fn scheduler(kind: SamplerKind, eta: f64, log_prob: LogProbReduction) -> Scheduler {
    Scheduler::new(SamplerConfig {
        kind,
        eta,
        log_prob,
        ..SamplerConfig::default()
    })
    .unwrap()
}

#[test]
fn transition_log_prob_is_the_closed_form_gaussian_density() {
    let x_t = tensor(&[[0.3, -1.2, 0.7], [1.5, 0.1, -0.4]]);
    let eps = tensor(&[[0.2, 0.5, -0.9], [-1.1, 0.3, 0.05]]);
    let x_next = tensor(&[[0.25, -1.0, 0.6], [1.2, 0.2, -0.3]]);
    let steps = [3usize, 47];
    let sum = scheduler(SamplerKind::Ddim, 1.0, LogProbReduction::Sum);
    let s = sum.schedule();

    let g = sum.transition(x_t.clone(), eps.clone(), &steps);
    let got = to_vec(g.log_prob(x_next.clone(), LogProbReduction::Sum));

    let (xt, e, xn) = (
        to_vec(x_t.clone()),
        to_vec(eps.clone()),
        to_vec(x_next.clone()),
    );
    for (row, &k) in steps.iter().enumerate() {
        // DDPO's formulas, written out independently in f64.
        let (a, ap) = (s.alpha_bar(k), s.alpha_bar_prev(k));
        let var = (1.0 - ap) / (1.0 - a) * (1.0 - a / ap);
        let mut expected = 0.0;
        for d in 0..3 {
            let i = row * 3 + d;
            let x0 = (xt[i] as f64 - (1.0 - a).sqrt() * e[i] as f64) / a.sqrt();
            let mean = ap.sqrt() * x0 + (1.0 - ap - var).sqrt() * e[i] as f64;
            expected += Normal::new(mean, var.sqrt()).unwrap().ln_pdf(xn[i] as f64);
        }
        let rel = (got[row] as f64 - expected).abs() / expected.abs().max(1.0);
        assert!(rel < 1e-4, "step {k}: {} vs {expected}", got[row]);
    }

    let mean = g.log_prob(x_next, LogProbReduction::Mean);
    for (m, s) in to_vec(mean).iter().zip(&got) {
        assert!(
            (m * 3.0 - s).abs() < 1e-3 * s.abs().max(1.0),
            "sum = 3 × mean"
        );
    }
}

#[test]
fn ddpm_transitions_equal_ddim_with_eta_one() {
    let x_t = tensor(&[[0.3, -1.2, 0.7], [1.5, 0.1, -0.4]]);
    let eps = tensor(&[[0.2, 0.5, -0.9], [-1.1, 0.3, 0.05]]);
    let steps = [0usize, 30];
    let ddim = scheduler(SamplerKind::Ddim, 1.0, LogProbReduction::Sum).transition(
        x_t.clone(),
        eps.clone(),
        &steps,
    );
    let ddpm =
        scheduler(SamplerKind::Ddpm, 0.0, LogProbReduction::Sum).transition(x_t, eps, &steps);
    for (a, b) in to_vec(ddim.mean).iter().zip(to_vec(ddpm.mean)) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    for (a, b) in to_vec(ddim.std).iter().zip(to_vec(ddpm.std)) {
        assert!((a - b).abs() < 1e-7);
    }
}

#[test]
fn noising_kernel_is_the_forward_process() {
    let sch = scheduler(SamplerKind::Ddim, 1.0, LogProbReduction::Sum);
    let s = sch.schedule();
    let x_prev = tensor(&[[0.3, -1.2, 0.7]]);
    let g = sch.noising_kernel(x_prev, &[10]);
    let alpha = s.alpha_bar(10) / s.alpha_bar_prev(10);
    let mean = to_vec(g.mean);
    assert!((mean[1] as f64 - alpha.sqrt() * -1.2).abs() < 1e-6);
    assert!((to_vec(g.std)[0] as f64 - (1.0 - alpha).sqrt()).abs() < 1e-7);
}

#[test]
fn exact_mixture_eps_is_the_scaled_score_of_the_noised_mixture() {
    let scenes_: Vec<GaussianMixture> = ["ring8", "grid9"]
        .iter()
        .map(|s| scenes::scene(s).unwrap())
        .collect();
    let exact = ExactEps::<B>::new(&scenes_, &Default::default());
    let points = [[0.3f32, -0.2], [1.1, 0.4], [-0.7, -0.9], [0.05, 0.95]];
    let x = Tensor::<B, 2>::from_data(
        TensorData::new(points.iter().flatten().copied().collect::<Vec<_>>(), [4, 2]),
        &Default::default(),
    );
    let alpha_bars = [0.9, 0.5, 0.2, 0.99];
    // Rows 0 and 1 are the scenes, row 2 the unconditional union.
    let rows = [0usize, 1, 2, 0];
    let got = to_vec(exact.eps(x, &alpha_bars, &rows));
    let union = GaussianMixture::union(&scenes_);
    let h = 1e-5;
    for i in 0..4 {
        let m = match rows[i] {
            2 => union.noised(alpha_bars[i]),
            r => scenes_[r].noised(alpha_bars[i]),
        };
        let p = [points[i][0] as f64, points[i][1] as f64];
        for d in 0..2 {
            let (mut xp, mut xm) = (p, p);
            xp[d] += h;
            xm[d] -= h;
            let score = (m.log_density(xp) - m.log_density(xm)) / (2.0 * h);
            let expected = -(1.0 - alpha_bars[i]).sqrt() * score;
            let err = (got[i * 2 + d] as f64 - expected).abs();
            assert!(
                err < 2e-4 * expected.abs().max(1.0),
                "row {i} dim {d}: {} vs {expected}",
                got[i * 2 + d]
            );
        }
    }
}

/// The untrained policy is the base model; CFG combines its branches linearly; and the
/// inference twin of the model computes bit for bit what the training model does.
#[test]
fn untrained_policy_is_the_base_model_exactly_and_cfg_combines_linearly() {
    let env = Toy2d::<B>::new(
        Toy2dConfig::default(),
        SamplerConfig {
            guidance: 3.0,
            ..SamplerConfig::default()
        },
        Default::default(),
    )
    .unwrap();
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
    let policy = env.init_policy(&mut rng);
    let x = Tensor::<B, 2>::from_data(
        TensorData::new(vec![0.3f32, -0.2, 1.0, 0.5], [2, 2]),
        &Default::default(),
    );
    let steps = [5usize, 40];
    let prompts = [0usize, 1];
    let model = env.train();
    let p = to_vec(model.eps(Denoiser::Policy(&policy), x.clone(), &steps, &prompts));
    let b = to_vec(model.eps(Denoiser::Base, x.clone(), &steps, &prompts));
    assert_eq!(p, b);
    let inner = policy.valid();
    let twin = env.infer().eps(
        Denoiser::Policy(&inner),
        x.clone().inner(),
        &steps,
        &prompts,
    );
    assert_eq!(to_vec(Tensor::from_inner(twin)), p);
    let c = to_vec(model.eps_unguided(Denoiser::Base, x.clone(), &steps, Some(&prompts)));
    let u = to_vec(model.eps_unguided(Denoiser::Base, x, &steps, None));
    for i in 0..4 {
        assert!((b[i] - (u[i] + 3.0 * (c[i] - u[i]))).abs() < 1e-5);
    }
}
