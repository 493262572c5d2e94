//! SD's VAE against diffusers' AutoencoderKL (fixtures from tools/fixtures/; weights in fp16).
//!
//! Measured max abs errors (Flex, f32): encode mean 2.5e-6 and logvar 3.8e-6 (values up to 2.1
//! and 2.7), decode 1.7e-6 (up to 2.8), decoded image 8.3e-7; SD's full layout: encode 1.7e-6,
//! decode 4.2e-6 (up to 2.9).

use crate::common::{assert_matches_real_sd15, compare, fixture, input};
use bench_models::sd::{AutoencoderKl, VaeConfig};
use bench_models::weights::expected_tensors;
use burn::backend::Flex;

type B = Flex;
const FILE: &str = "sd_tiny/vae.safetensors";

fn vae() -> AutoencoderKl<B> {
    AutoencoderKl::from_folder(&fixture("sd_tiny/vae"), &Default::default()).unwrap()
}

#[test]
fn vae_encode_matches_diffusers() {
    let dist = vae().encode(input(FILE, "encode_input"));
    for (got, name) in [(dist.mean, "encode_mean"), (dist.logvar, "encode_logvar")] {
        let (err, scale) = compare(got, FILE, name);
        assert!(scale > 0.5, "{name}: activations should be of order 1");
        assert!(
            err <= 1e-4,
            "{name}: max abs error {err:.2e} (scale {scale:.2})"
        );
    }
}

#[test]
fn vae_decode_matches_diffusers() {
    let vae = vae();
    assert_eq!(vae.scaling_factor, 0.18215);
    let (err, scale) = compare(
        vae.decode(input(FILE, "decode_input")),
        FILE,
        "decode_output",
    );
    assert!(scale > 0.5);
    assert!(
        err <= 1e-4,
        "decode: max abs error {err:.2e} (scale {scale:.2})"
    );
    let (err, _) = compare(
        vae.decode_latents(input(FILE, "decode_latents")),
        FILE,
        "decode_image",
    );
    assert!(err <= 1e-4, "decode_latents: max abs error {err:.2e}");
}

#[test]
fn vae_keys_match_the_real_sd15_checkpoint() {
    let model = VaeConfig::sd15().init::<B>(&Default::default());
    assert_matches_real_sd15("vae", &expected_tensors(&model));
}

/// SD v1.5's exact VAE layout (4 blocks, 2 resnets each, 3 resamplers) at widths 8–16.
#[test]
fn vae_with_sd15_layout_matches_diffusers() {
    const IO: &str = "sd_tiny_full_layout/io.safetensors";
    let vae =
        AutoencoderKl::<B>::from_folder(&fixture("sd_tiny_full_layout/vae"), &Default::default())
            .unwrap();
    let dist = vae.encode(input(IO, "encode_input"));
    for (got, name) in [
        (dist.mean, "encode_mean"),
        (dist.logvar, "encode_logvar"),
        (vae.decode(input(IO, "decode_input")), "decode_output"),
    ] {
        let (err, scale) = compare(got, IO, name);
        assert!(scale > 0.5, "{name}: activations should be of order 1");
        assert!(err <= 1e-4, "{name}: max abs error {err:.2e}");
    }
}
