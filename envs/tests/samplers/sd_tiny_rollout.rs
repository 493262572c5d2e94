//! The DDIM sampler with SD's networks reproduces diffusers' StableDiffusionPipeline: a 4-step
//! rollout (η = 1, CFG 5, empty negative prompt) of the tiny fixture pipeline, with the noise
//! diffusers injected at each step (fixtures from tools/fixtures/make_sd_tiny.py).

use crate::common::{compare, fixture, input, tensor};
use bench_envs::{SamplerConfig, Scheduler};
use bench_models::sd::SdComponents;
use burn::backend::Flex;
use burn::tensor::{Int, Tensor, TensorData};

type B = Flex;
const FILE: &str = "sd_tiny/rollout.safetensors";
const PROMPTS: [&str; 2] = ["a photo of a cat", "an astronaut riding a horse"];

/// Measured max abs errors (Flex, f32): guided ε ≤ 2.2e-5 per step (CFG 5 multiplies the UNet's
/// own 7e-6 by up to 9), latents 4.0e-5 after the first step growing to 8.2e-5 after the fourth
/// (each step divides ε's error by √ᾱ_t ≈ 0.45 at t = 751), final images 6.4e-6. A wrong
/// transition is off by order 1 (η ignored: 2.9 after the first step).
#[test]
fn ddim_cfg_rollout_matches_diffusers_pipeline() {
    let device = Default::default();
    let sd = SdComponents::<B>::load(&fixture("sd_tiny"), &device).unwrap();
    let scheduler = Scheduler::new(SamplerConfig::with_steps(4)).unwrap();
    // The pipeline's timesteps (751, 501, 251, 1) are checked in diffusers_schedulers.rs.

    // Text: the unconditional (empty prompt) rows first, as diffusers concatenates them.
    let n = PROMPTS.len();
    let ids =
        |prompts: &[&str]| -> Tensor<B, 2, Int> { sd.tokenizer.encode_batch(prompts, &device) };
    let (cond_ids, _) = tensor(FILE, "cond_ids");
    let ours: Vec<f64> = ids(&PROMPTS)
        .into_data()
        .iter::<i64>()
        .map(|v| v as f64)
        .collect();
    assert_eq!(ours, cond_ids);
    let context = sd
        .text_encoder
        .forward(Tensor::cat(vec![ids(&[""; 2]), ids(&PROMPTS)], 0));

    let mut x: Tensor<B, 4> = input(FILE, "latents_init");
    let [_, c, h, w] = x.dims();
    let noise: Tensor<B, 5> = input(FILE, "noise");
    let steps_expected: Tensor<B, 5> = input(FILE, "latents_steps");
    let guided_expected: Tensor<B, 5> = input(FILE, "guided_eps");
    let w_cfg = scheduler.guidance();
    for k in 0..scheduler.num_steps() {
        let t = scheduler.schedule().timestep(k) as f32;
        let t = Tensor::<B, 1>::from_data(TensorData::new(vec![t; 2 * n], [2 * n]), &device);
        let eps = sd.unet.forward(
            Tensor::cat(vec![x.clone(), x.clone()], 0),
            t,
            context.clone(),
        );
        let [uncond, cond] = eps.chunk(2, 0).try_into().unwrap();
        let guided = uncond.clone() + (cond - uncond) * w_cfg;
        let at = |t: &Tensor<B, 5>| t.clone().narrow(0, k, 1).squeeze_dim::<4>(0);
        let (err, _) = compare_tensors(guided.clone(), at(&guided_expected), "guided ε");
        assert!(err <= 1e-4, "step {k}: guided ε max abs error {err:.2e}");

        let flat = |t: Tensor<B, 4>| t.reshape([n, c * h * w]);
        let transition = scheduler.transition(flat(x), flat(guided), &[k; 2]);
        x = transition.sample(flat(at(&noise))).reshape([n, c, h, w]);
        let (err, _) = compare_tensors(x.clone(), at(&steps_expected), "latents");
        assert!(err <= 5e-4, "step {k}: latents max abs error {err:.2e}");
    }
    let (err, _) = compare(sd.vae.decode_latents(x), FILE, "images");
    assert!(err <= 1e-4, "images: max abs error {err:.2e}");
}

/// (max abs error, max |b|) between two tensors of one shape.
fn compare_tensors(a: Tensor<B, 4>, b: Tensor<B, 4>, what: &str) -> (f64, f64) {
    assert_eq!(a.dims(), b.dims());
    let a = a.into_data().to_vec::<f32>().unwrap();
    let b = b.into_data().to_vec::<f32>().unwrap();
    let a: Vec<f64> = a.into_iter().map(f64::from).collect();
    let b: Vec<f64> = b.into_iter().map(f64::from).collect();
    let err = crate::common::max_abs_diff(&a, &b);
    eprintln!("{what}: max abs error {err:.2e}");
    (err, b.iter().fold(0.0, |m, v| m.max(v.abs())))
}
