//! SD's VAE against diffusers' AutoencoderKL (fixtures from tools/fixtures/; weights in fp16).
//!
//! Measured max abs errors (Flex, f32): encode mean 2.5e-6 and logvar 3.8e-6 (values up to 2.1
//! and 2.7), decode 1.7e-6 (up to 2.8), decoded image 8.3e-7.

mod common;

use bench_models::sd::{AutoencoderKl, VaeConfig};
use bench_models::weights::expected_tensors;
use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData};
use common::{fixture, max_abs_diff, tensor};
use serde_json::Value;

type B = Flex;
const FILE: &str = "sd_tiny/vae.safetensors";

fn input(name: &str) -> Tensor<B, 4> {
    let (v, s) = tensor(FILE, name);
    let v: Vec<f32> = v.into_iter().map(|x| x as f32).collect();
    Tensor::from_data(
        TensorData::new(v, [s[0], s[1], s[2], s[3]]),
        &Default::default(),
    )
}

/// Max abs error against the fixture, after checking the shape; returns (error, max |expected|).
fn compare(got: Tensor<B, 4>, name: &str) -> (f64, f64) {
    let (expected, shape) = tensor(FILE, name);
    assert_eq!(got.dims().to_vec(), shape, "{name}");
    let got: Vec<f64> = got
        .into_data()
        .to_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect();
    let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    (max_abs_diff(&got, &expected), scale)
}

fn vae() -> AutoencoderKl<B> {
    AutoencoderKl::from_folder(&fixture("sd_tiny/vae"), &Default::default()).unwrap()
}

#[test]
fn vae_encode_matches_diffusers() {
    let dist = vae().encode(input("encode_input"));
    for (got, name) in [(dist.mean, "encode_mean"), (dist.logvar, "encode_logvar")] {
        let (err, scale) = compare(got, name);
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
    let (err, scale) = compare(vae.decode(input("decode_input")), "decode_output");
    assert!(scale > 0.5);
    assert!(
        err <= 1e-4,
        "decode: max abs error {err:.2e} (scale {scale:.2})"
    );
    let (err, _) = compare(vae.decode_latents(input("decode_latents")), "decode_image");
    assert!(err <= 1e-4, "decode_latents: max abs error {err:.2e}");
}

#[test]
fn vae_keys_match_the_real_sd15_checkpoint() {
    let text = std::fs::read_to_string(fixture("sd15_real_keys.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let real = &json["vae"];
    let mut expected: Vec<(String, Vec<usize>)> =
        serde_json::from_value(real["tensors"].clone()).unwrap();
    expected.sort();
    let model = VaeConfig::sd15().init::<B>(&Default::default());
    let ours = expected_tensors(&model);
    assert_eq!(ours, expected);
    // Counted from the shapes: `num_params` would materialise the lazily initialised weights.
    let count: usize = ours.iter().map(|(_, s)| s.iter().product::<usize>()).sum();
    assert_eq!(count as u64, real["num_parameters"].as_u64().unwrap());
}
