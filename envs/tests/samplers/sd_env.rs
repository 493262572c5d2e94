//! The SD environment on the tiny fixture pipeline: its base-model transitions reproduce
//! diffusers' StableDiffusionPipeline rollout (DDIM η = 1, CFG 5, empty negative prompt, the
//! noise diffusers injected), a fresh LoRA policy is the base model exactly, and the
//! trainable networks start where the objectives expect and get gradients.

use crate::common::{fixture, input};
use bench_envs::sd::{SdConfig, SdEnv};
use bench_envs::{Denoiser, DiffusionEnv, DiffusionModel, Environment, SamplerConfig};
use bench_models::sd::AuxNetConfig;
use burn::backend::{Autodiff, Flex};
use burn::module::Module;
use burn::tensor::Tensor;
use rand::{rngs::StdRng, SeedableRng};

type B = Autodiff<Flex>;
const FILE: &str = "sd_tiny/rollout.safetensors";

fn small_net() -> AuxNetConfig {
    AuxNetConfig {
        block_out_channels: vec![32, 32],
        heads: 4,
        norm_num_groups: 32,
    }
}

fn env() -> SdEnv<B> {
    let config = SdConfig {
        model: fixture("sd_tiny"),
        prompts: vec![
            "a photo of a cat".into(),
            "an astronaut riding a horse".into(),
        ],
        resolution: 16,
        flow_net: small_net(),
        field_net: small_net(),
        ..SdConfig::default()
    };
    let sampler = SamplerConfig::with_steps(4);
    SdEnv::load(config, sampler, Default::default()).unwrap()
}

fn max_diff<const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f64 {
    f64::from((a - b).abs().max().into_scalar())
}

/// Measured (Flex, f32): latents ≤ 8.2e-5 after four steps, images 6.4e-6 (the errors of
/// the hand-written pipeline in sd_tiny_rollout.rs: the env adds none). On the inference
/// backend, where rollouts run.
#[test]
fn base_rollout_matches_diffusers_pipeline() {
    let env = env();
    let model = env.infer();
    assert_eq!(env.dims(), 4 * 8 * 8);
    let prompts = [0, 1];
    let flat = |t: Tensor<B, 4>| t.reshape([2, env.dims()]).inner();
    let mut x = flat(input(FILE, "latents_init"));
    let noise: Tensor<B, 5> = input(FILE, "noise");
    let expected: Tensor<B, 5> = input(FILE, "latents_steps");
    let at = |t: &Tensor<B, 5>, k: usize| t.clone().narrow(0, k, 1).squeeze_dim::<4>(0);
    for k in 0..4 {
        let transition = model.transition(Denoiser::Base, x, &[k; 2], &prompts);
        x = transition.sample(flat(at(&noise, k)));
        let err = max_diff(
            Tensor::from_inner(x.clone()),
            Tensor::from_inner(flat(at(&expected, k))),
        );
        eprintln!("step {k}: latents max abs error {err:.2e}");
        assert!(err <= 2e-4, "step {k}: latents max abs error {err:.2e}");
    }
    let images = Tensor::from_inner(model.decode(x));
    let err = max_diff(images, input(FILE, "images"));
    assert!(err <= 1e-4, "images: max abs error {err:.2e}");
}

/// On the autodiff backend, where training differentiates.
#[test]
fn fresh_networks_start_at_the_base_model_and_learn() {
    let env = env();
    let model = env.train();
    let mut rng = StdRng::seed_from_u64(0);
    let policy = env.init_policy(&mut rng);
    let x = Tensor::<B, 2>::random(
        [2, env.dims()],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &Default::default(),
    );
    let (steps, prompts) = ([1, 2], [1, 0]);
    let base = model.eps(Denoiser::Base, x.clone(), &steps, &prompts);
    let fresh = model.eps(Denoiser::Policy(&policy), x.clone(), &steps, &prompts);
    assert_eq!(max_diff(base.clone(), fresh.clone()), 0.0);
    // Batched CFG equals the two branches computed apart.
    let unguided = |p| model.eps_unguided(Denoiser::Base, x.clone(), &steps, p);
    let (u, c) = (unguided(None), unguided(Some(&prompts[..])));
    let apart = u.clone() + (c.clone() - u.clone()).mul_scalar(5.0);
    assert!(max_diff(apart, base.clone()) < 1e-4);
    assert!(max_diff(u, c) > 1e-3, "the prompt must change ε");

    let state = env.init_state_net(&mut rng);
    let values = model.state_value(&state, x.clone(), &[1, 4], &prompts);
    assert_eq!(values.clone().abs().max().into_scalar(), 0.0);
    let field = env.init_field_net(&mut rng);
    let g = model.field(&field, x.clone(), &[1, 4], &prompts);
    assert_eq!(g.dims(), [2, env.dims()]);
    assert_eq!(g.abs().max().into_scalar(), 0.0);

    // Gradients reach the LoRA's up matrices (B starts at zero) and never the frozen UNet.
    let loss = model
        .eps(Denoiser::Policy(&policy), x, &steps, &prompts)
        .powi_scalar(2)
        .sum();
    let grads = loss.backward();
    let up = &policy.down_blocks[0].attentions[0].transformer_blocks[0]
        .attn2
        .to_v
        .up;
    let g_up = up.weight.grad(&grads).expect("LoRA up gets a gradient");
    assert!(f64::from(g_up.abs().max().into_scalar()) > 0.0);
    assert!(model.unet().conv_in.weight.grad(&grads).is_none());
    assert!(policy.num_params() > 0);
}
