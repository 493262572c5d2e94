//! SD's UNet against diffusers' UNet2DConditionModel (fixtures from tools/fixtures/; weights in
//! fp16).
//!
//! Measured max abs errors (Flex, f32): 7.2e-6 on the batch with timesteps 981, 1, 37.5 (max |ε|
//! 2.2) and 3.7e-6 for the single timestep 981 (max |ε| 1.6).

mod common;

use bench_models::sd::{UNet2DConditionModel, UNetConfig};
use bench_models::weights::expected_tensors;
use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData};
use common::{fixture, max_abs_diff, tensor};
use serde_json::Value;

type B = Flex;
const FILE: &str = "sd_tiny/unet.safetensors";

fn input<const D: usize>(name: &str) -> Tensor<B, D> {
    let (v, s) = tensor(FILE, name);
    let v: Vec<f32> = v.into_iter().map(|x| x as f32).collect();
    Tensor::from_data(TensorData::new(v, s), &Default::default())
}

/// (max abs error, max |expected|) against the fixture tensor `name`.
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

#[test]
fn unet_matches_diffusers() {
    let device = Default::default();
    let unet = UNet2DConditionModel::<B>::from_folder(&fixture("sd_tiny/unet"), &device).unwrap();
    // Batched, with timesteps 981, 1 and 37.5.
    let eps = unet.forward(
        input("sample"),
        input("timesteps"),
        input("encoder_hidden_states"),
    );
    let (err, scale) = compare(eps, "eps");
    assert!(scale > 1.0);
    assert!(err <= 1e-4, "max abs error {err:.2e}");
    let t = Tensor::<B, 1>::from_data(TensorData::new(vec![981.0f32], [1]), &device);
    let eps = unet.forward(
        input("sample_single"),
        t,
        input("encoder_hidden_states_single"),
    );
    let (err, _) = compare(eps, "eps_single");
    assert!(err <= 1e-4, "max abs error {err:.2e}");
}

#[test]
fn unet_keys_match_the_real_sd15_checkpoint() {
    let text = std::fs::read_to_string(fixture("sd15_real_keys.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let real = &json["unet"];
    let mut expected: Vec<(String, Vec<usize>)> =
        serde_json::from_value(real["tensors"].clone()).unwrap();
    expected.sort();
    let model = UNetConfig::sd15().init::<B>(&Default::default());
    let ours = expected_tensors(&model);
    assert_eq!(ours, expected);
    // Counted from the shapes: `num_params` would materialise the lazily initialised weights.
    let count: usize = ours.iter().map(|(_, s)| s.iter().product::<usize>()).sum();
    assert_eq!(count as u64, real["num_parameters"].as_u64().unwrap());
}
