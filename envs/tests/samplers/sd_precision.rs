//! SD with frozen networks in bf16 and f16 (`SdConfig::dtype`) on the tiny fixture pipeline:
//! the environment still takes and gives f32, its ε stays within the rounding drift of the
//! precision, and a fresh LoRA's gradient (f32, through the half-precision UNet) points where
//! f32's does. The drift on a whole rollout is measured by harness/examples/precision_drift.rs.

use crate::common::fixture;
use bench_envs::sd::{SdConfig, SdEnv};
use bench_envs::{
    normal_tensor, Denoiser, DiffusionEnv, DiffusionModel, Environment, LogProbReduction,
    SamplerConfig,
};
use bench_models::Precision;
use burn::backend::{Autodiff, Flex};
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{backend::AutodiffBackend, DType, Tensor};
use rand::{rngs::StdRng, SeedableRng};

type B = Autodiff<Flex>;

fn env(dtype: Precision) -> SdEnv<B> {
    let config = SdConfig {
        model: fixture("sd_tiny"),
        prompts: vec![
            "a photo of a cat".into(),
            "an astronaut riding a horse".into(),
        ],
        resolution: 16,
        dtype,
        ..SdConfig::default()
    };
    let sampler = SamplerConfig::with_steps(10);
    SdEnv::load(config, sampler, Default::default()).unwrap()
}

fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().convert::<f64>().to_vec().unwrap()
}

fn relative_l2(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    (num / b.iter().map(|y| y * y).sum::<f64>()).sqrt()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

/// Every float parameter's gradient, flattened in module order, and their dtypes.
struct Grads {
    grads: <B as AutodiffBackend>::Gradients,
    values: Vec<f64>,
    dtypes: Vec<DType>,
}

impl ModuleVisitor<B> for Grads {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = param.val().grad(&self.grads) {
            self.dtypes.push(g.dtype());
            self.values
                .extend(g.into_data().convert::<f64>().to_vec::<f64>().unwrap());
        }
    }
}

/// Unguided ε at a middle step, and the gradient of a fresh LoRA's log-probability of one
/// transition, from fixed states.
fn eps_and_gradient(env: &SdEnv<B>) -> (Vec<f64>, Vec<f64>, Vec<DType>) {
    let rows = [0, 1, 0, 1];
    let mut rng = StdRng::seed_from_u64(7);
    let x = normal_tensor::<B>(4, env.dims(), &mut rng, env.device());
    let next = normal_tensor::<B>(4, env.dims(), &mut rng, env.device()) * 0.1 + x.clone();
    let eps = env
        .infer()
        .eps_unguided(Denoiser::Base, x.clone().inner(), &[5; 4], Some(&rows));
    assert_eq!(eps.dtype(), DType::F32, "ε leaves the environment in f32");
    let policy = env.init_policy(&mut StdRng::seed_from_u64(8));
    let lp = env
        .train()
        .transition(Denoiser::Policy(&policy), x, &[5; 4], &rows)
        .log_prob(next, LogProbReduction::Mean);
    assert_eq!(lp.dtype(), DType::F32, "log-probabilities are f32");
    let mut grads = Grads {
        grads: lp.mean().backward(),
        values: Vec::new(),
        dtypes: Vec::new(),
    };
    policy.visit(&mut grads);
    (values(Tensor::from_inner(eps)), grads.values, grads.dtypes)
}

/// Measured (Flex): unguided ε drifts 6.6e-2 (bf16) and 8.7e-3 (f16) in relative L2 from f32
/// — in the ratio of their roundings (2⁻⁸ vs 2⁻¹¹) — and the LoRA gradient's cosine with f32's
/// is 0.980 (bf16) and 0.9995 (f16). The bounds leave about twice the measured drift and twice
/// the measured gap to a cosine of 1.
#[test]
fn half_precision_sd_stays_near_f32_and_trains_an_f32_lora() {
    let (eps32, grad32, _) = eps_and_gradient(&env(Precision::F32));
    assert!(!grad32.is_empty() && grad32.iter().any(|g| *g != 0.0));
    for (dtype, eps_bound, cosine_floor) in
        [(Precision::Bf16, 0.12, 0.95), (Precision::F16, 0.02, 0.999)]
    {
        let (eps, grad, dtypes) = eps_and_gradient(&env(dtype));
        let drift = relative_l2(&eps, &eps32);
        let cos = cosine(&grad, &grad32);
        eprintln!("{dtype:?}: ε relative L2 drift {drift:.2e}, LoRA gradient cosine {cos:.5}");
        assert!(
            drift > 0.0,
            "{dtype:?}: ε unchanged: the weights were not cast"
        );
        assert!(drift < eps_bound, "{dtype:?}: ε drift {drift:.2e}");
        assert_eq!(grad.len(), grad32.len());
        assert!(
            dtypes.iter().all(|d| *d == DType::F32),
            "{dtype:?}: {dtypes:?}"
        );
        assert!(cos > cosine_floor, "{dtype:?}: gradient cosine {cos}");
    }
}
