//! SD's UNet against diffusers' UNet2DConditionModel (fixtures from tools/fixtures/; weights in
//! fp16).
//!
//! Measured max abs errors (Flex, f32): 7.2e-6 on the batch with timesteps 981, 1, 37.5 (max |ε|
//! 2.2), 3.7e-6 for the single timestep 981 (max |ε| 1.6), 2.5e-6 for SD's full layout (max |ε|
//! 1.9).

use crate::common::{assert_matches_real_sd15, compare, fixture, input};
use bench_models::sd::{UNet2DConditionModel, UNetConfig};
use bench_models::weights::expected_tensors;
use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData};

type B = Flex;
const FILE: &str = "sd_tiny/unet.safetensors";

#[test]
fn unet_matches_diffusers() {
    let device = Default::default();
    let unet = UNet2DConditionModel::<B>::from_folder(&fixture("sd_tiny/unet"), &device).unwrap();
    // Batched, with timesteps 981, 1 and 37.5.
    let eps = unet.forward(
        input(FILE, "sample"),
        input(FILE, "timesteps"),
        input(FILE, "encoder_hidden_states"),
    );
    let (err, scale) = compare(eps, FILE, "eps");
    assert!(scale > 1.0);
    assert!(err <= 1e-4, "max abs error {err:.2e}");
    let t = Tensor::<B, 1>::from_data(TensorData::new(vec![981.0f32], [1]), &device);
    let eps = unet.forward(
        input(FILE, "sample_single"),
        t,
        input(FILE, "encoder_hidden_states_single"),
    );
    let (err, _) = compare(eps, FILE, "eps_single");
    assert!(err <= 1e-4, "max abs error {err:.2e}");
}

#[test]
fn unet_keys_match_the_real_sd15_checkpoint() {
    let model = UNetConfig::sd15().init::<B>(&Default::default());
    assert_matches_real_sd15("unet", &expected_tensors(&model));
}

/// SD v1.5's exact layout (4 blocks, 2 resnets each, 3 with cross-attention) at widths 8–16:
/// the skip connections and channel changes of the real topology, with a 7-token context.
#[test]
fn unet_with_sd15_layout_matches_diffusers() {
    const IO: &str = "sd_tiny_full_layout/io.safetensors";
    let device = Default::default();
    let unet =
        UNet2DConditionModel::<B>::from_folder(&fixture("sd_tiny_full_layout/unet"), &device)
            .unwrap();
    let eps = unet.forward(
        input(IO, "sample"),
        input(IO, "timesteps"),
        input(IO, "encoder_hidden_states"),
    );
    let (err, scale) = compare(eps, IO, "eps");
    assert!(scale > 1.0);
    assert!(err <= 1e-4, "max abs error {err:.2e}");
}
