//! SD's networks are differentiable under burn's autodiff (reward-gradient methods backpropagate
//! through the VAE decoder and the UNet): the gradient with respect to the input agrees with a
//! central finite difference (step 3e-3) along the gradient's direction. Measured relative
//! differences: 9.5e-5 (UNet ε), 5.0e-5 (VAE decoder).

use crate::common::{fixture, input};
use bench_models::sd::{AutoencoderKl, UNet2DConditionModel};
use burn::backend::{Autodiff, Flex};
use burn::tensor::{Distribution, Tensor};

type B = Autodiff<Flex>;

/// (autodiff directional derivative, finite-difference one) of `f` at `x` along the gradient's
/// own direction, scaled to unit RMS: the direction of largest change, where f32 rounding
/// matters least against the signal.
fn directional(f: impl Fn(Tensor<B, 4>) -> Tensor<B, 1>, x: Tensor<B, 4>) -> (f64, f64) {
    let x = x.require_grad();
    let grads = f(x.clone()).backward();
    let g = Tensor::<B, 4>::from_inner(x.grad(&grads).unwrap());
    let rms: f64 = g.clone().powi_scalar(2).mean().sqrt().into_scalar().into();
    let v = g.clone() / rms;
    let analytic: f64 = (g * v.clone()).sum().into_scalar().into();
    let h = 3e-3;
    let plus: f64 = f(x.clone().detach() + v.clone() * h).into_scalar().into();
    let minus: f64 = f(x.detach() - v * h).into_scalar().into();
    (analytic, (plus - minus) / (2.0 * h))
}

fn assert_close((analytic, numeric): (f64, f64), what: &str) {
    let rel = (analytic - numeric).abs() / numeric.abs().max(1e-3);
    eprintln!(
        "{what}: autodiff {analytic:.6} vs finite difference {numeric:.6} (relative {rel:.1e})"
    );
    assert!(
        rel < 1e-3,
        "{what}: autodiff {analytic:.5} vs finite difference {numeric:.5} (relative {rel:.1e})"
    );
}

#[test]
fn unet_and_vae_gradients_match_finite_differences() {
    let device = Default::default();
    <B as burn::tensor::backend::Backend>::seed(&device, 0);
    let unet = UNet2DConditionModel::<B>::from_folder(&fixture("sd_tiny/unet"), &device).unwrap();
    let file = "sd_tiny/unet.safetensors";
    let t: Tensor<B, 1> = input(file, "timesteps");
    let ctx: Tensor<B, 3> = input(file, "encoder_hidden_states");
    let weights = Tensor::<B, 4>::random([3, 4, 8, 8], Distribution::Normal(0.0, 1.0), &device);
    let eps_dot =
        |x: Tensor<B, 4>| (unet.forward(x, t.clone(), ctx.clone()) * weights.clone()).sum();
    assert_close(directional(eps_dot, input(file, "sample")), "UNet ε");

    let vae = AutoencoderKl::<B>::from_folder(&fixture("sd_tiny/vae"), &device).unwrap();
    let weights = Tensor::<B, 4>::random([2, 3, 16, 16], Distribution::Normal(0.0, 1.0), &device);
    // The clamp of decode_latents has zero gradient where it binds; the raw decoder is tested.
    let decoded_dot = |z: Tensor<B, 4>| (vae.decode(z) * weights.clone()).sum();
    assert_close(
        directional(
            decoded_dot,
            input("sd_tiny/vae.safetensors", "decode_input"),
        ),
        "VAE decode",
    );
}
