//! How far SD in bf16 or f16 (frozen text encoder, UNet and VAE; f32 LoRA) drifts from f32 on
//! an SD folder (the tiny fixture by default): ε of one guided UNet call, a whole rollout from
//! the same noise (final latents and decoded images), and the LoRA gradient of
//! a policy-gradient step. Prints one JSON object per precision.
//!
//! `cargo run --release -p bench --example precision_drift -- fixtures/sd_tiny 4 50`
//! (model folder, batch, steps).

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::{AutodiffBackend, Backend as _};
use burn::tensor::Tensor;
use rand::{rngs::StdRng, SeedableRng};

use bench::backend::{Backend, Inner};
use bench_envs::sd::{SdConfig, SdEnv};
use bench_envs::{
    normal_tensor, rollout, Denoiser, DiffusionEnv, DiffusionModel, Environment, LogProbReduction,
    SamplerConfig,
};
use bench_models::Precision;

fn env(model: &str, steps: usize, dtype: Precision) -> SdEnv<Backend> {
    let config = SdConfig {
        model: model.into(),
        prompts: vec![
            "a photo of a cat".into(),
            "an astronaut riding a horse".into(),
        ],
        resolution: 16,
        dtype,
        ..SdConfig::default()
    };
    let sampler = SamplerConfig::with_steps(steps);
    SdEnv::<Backend>::load(config, sampler, Default::default()).expect("model")
}

fn values<B: burn::tensor::backend::Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().convert::<f64>().to_vec::<f64>().expect("f64")
}

/// ‖a − b‖ / ‖b‖ and max |a − b|.
fn drift(a: &[f64], b: &[f64]) -> (f64, f64) {
    let (mut num, mut den, mut max) = (0.0, 0.0, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        num += (x - y) * (x - y);
        den += y * y;
        max = max.max((x - y).abs());
    }
    ((num / den).sqrt(), max)
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// Every float parameter's gradient, flattened, in module order.
struct Gradients {
    grads: <Backend as AutodiffBackend>::Gradients,
    values: Vec<f64>,
}

impl ModuleVisitor<Backend> for Gradients {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Backend, D>>) {
        if let Some(g) = param.val().grad(&self.grads) {
            self.values.extend(values(g));
        }
    }
}

/// What one precision gives: ε, the rollout's final latents and images, and the
/// gradient of the LoRA (flattened, in module order).
struct Outputs {
    /// The rollout's wall time (one run, after the ε call warmed the process).
    rollout_ms: f64,
    eps: Vec<f64>,
    eps_cond: Vec<f64>,
    latents: Vec<f64>,
    images: Vec<f64>,
    grad: Vec<f64>,
}

fn outputs(env: &SdEnv<Backend>, batch: usize, steps: usize) -> Outputs {
    let rows: Vec<usize> = (0..batch).map(|i| i % 2).collect();
    let mut rng = StdRng::seed_from_u64(0);
    let x = normal_tensor::<Inner>(batch, env.dims(), &mut rng, env.device());
    let eps = values(
        env.infer()
            .eps(Denoiser::Base, x.clone(), &vec![0; batch], &rows),
    );
    let eps_cond =
        values(
            env.infer()
                .eps_unguided(Denoiser::Base, x, &vec![0; batch], Some(&rows)),
        );

    let mut rng = StdRng::seed_from_u64(1);
    let started = std::time::Instant::now();
    let traj = rollout(env.infer(), Denoiser::Base, rows.clone(), &mut rng);
    let latents = values(traj.final_states());
    let rollout_ms = started.elapsed().as_secs_f64() * 1e3;
    let images = values(env.infer().decode(traj.final_states()));

    // A fresh LoRA (its `up` factors zero): the gradient of the first training step, on
    // the rollout's middle transition.
    let mut rng = StdRng::seed_from_u64(2);
    let policy = env.init_policy(&mut rng);
    let k = vec![steps / 2; batch];
    let x = Tensor::<Backend, 2>::from_inner(traj.states[steps / 2].clone());
    let next = Tensor::<Backend, 2>::from_inner(traj.states[steps / 2 + 1].clone());
    let lp = env
        .train()
        .transition(Denoiser::Policy(&policy), x, &k, &rows)
        .log_prob(next, LogProbReduction::Mean);
    let mut gather = Gradients {
        grads: lp.mean().backward(),
        values: Vec::new(),
    };
    policy.visit(&mut gather);
    let grad = gather.values;
    Outputs {
        rollout_ms,
        eps,
        eps_cond,
        latents,
        images,
        grad,
    }
}

fn main() {
    bench::allocator::tune_allocator();
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or(default.into());
    let model = arg(1, "fixtures/sd_tiny");
    let batch: usize = arg(2, "4").parse().expect("batch");
    let steps: usize = arg(3, "50").parse().expect("steps");

    let reference = outputs(&env(&model, steps, Precision::F32), batch, steps);
    println!(
        "{{\"dtype\": \"f32\", \"rollout_ms\": {:.1}}}",
        reference.rollout_ms
    );
    for dtype in [Precision::Bf16, Precision::F16] {
        let o = outputs(&env(&model, steps, dtype), batch, steps);
        let (eps_rel, eps_max) = drift(&o.eps, &reference.eps);
        let (cond_rel, _) = drift(&o.eps_cond, &reference.eps_cond);
        let (lat_rel, lat_max) = drift(&o.latents, &reference.latents);
        let (_, img_max) = drift(&o.images, &reference.images);
        println!(
            "{{\"dtype\": \"{}\", \"steps\": {steps}, \"batch\": {batch}, \
             \"eps_rel_l2\": {eps_rel:.3e}, \"eps_cond_rel_l2\": {cond_rel:.3e}, \"eps_max_abs\": {eps_max:.3e}, \
             \"final_latents_rel_l2\": {lat_rel:.3e}, \"final_latents_max_abs\": {lat_max:.3e}, \
             \"image_max_abs\": {img_max:.3e}, \"lora_grad_cosine\": {:.6}, \"rollout_ms\": {:.1}, \
             \"backend\": \"{}\"}}",
            dtype.name(),
            cosine(&o.grad, &reference.grad),
            o.rollout_ms,
            Backend::name(env(&model, 1, dtype).device()),
        );
    }
}
