//! Gradient checkpointing (burn's `BalancedCheckpointing` autodiff strategy, the `checkpointing`
//! feature of `bench`) recomputes memory-bound activations in the backward pass instead of
//! keeping them: the LoRA gradients through the UNet must be those of plain autodiff.

use crate::common::{fixture, input};
use bench_models::sd::{LoraConfig, UNet2DConditionModel, UNetLora};
use burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
use burn::backend::{Autodiff, Flex};
use burn::module::{Module, Param};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;
use rand::{rngs::StdRng, SeedableRng};

const IO: &str = "sd_tiny/unet.safetensors";

/// Every LoRA gradient of Σ ε² (the `up` matrices moved off zero first, so that every
/// parameter has a non-trivial gradient), flattened in module order.
fn lora_gradients<B: AutodiffBackend>() -> Vec<f32> {
    let device = Default::default();
    let unet = UNet2DConditionModel::<B>::from_folder(&fixture("sd_tiny/unet"), &device)
        .unwrap()
        .no_grad();
    let mut rng = StdRng::seed_from_u64(3);
    let mut lora = UNetLora::new(
        &unet.lora_layout(),
        LoraConfig::default(),
        &mut rng,
        &device,
    );
    lora.mid_block.attentions[0].transformer_blocks[0]
        .attn1
        .to_q
        .up
        .weight = Param::from_tensor(Tensor::ones([4, 64], &device));
    let eps = unet.forward_with_lora(
        input(IO, "sample"),
        input(IO, "timesteps"),
        input(IO, "encoder_hidden_states"),
        Some(&lora),
    );
    let grads = eps.powi_scalar(2).sum().backward();
    let mut out = vec![];
    let mut collect = |p: &Param<Tensor<B, 2>>| {
        if let Some(g) = p.grad(&grads) {
            out.extend(g.into_data().to_vec::<f32>().unwrap());
        }
    };
    for block in lora
        .down_blocks
        .iter()
        .chain([&lora.mid_block])
        .chain(&lora.up_blocks)
    {
        for t in &block.attentions {
            for tb in &t.transformer_blocks {
                for a in [&tb.attn1, &tb.attn2] {
                    for pair in [&a.to_q, &a.to_k, &a.to_v, &a.to_out[0]] {
                        collect(&pair.down.weight);
                        collect(&pair.up.weight);
                    }
                }
            }
        }
    }
    out
}

#[test]
fn checkpointed_gradients_equal_plain_ones() {
    let plain = lora_gradients::<Autodiff<Flex>>();
    let checkpointed = lora_gradients::<Autodiff<Flex, BalancedCheckpointing>>();
    assert_eq!(plain.len(), checkpointed.len());
    assert!(
        plain.iter().any(|g| g.abs() > 1e-3),
        "gradients must not vanish"
    );
    let scale = plain.iter().fold(0f32, |m, g| m.max(g.abs()));
    let err = plain
        .iter()
        .zip(&checkpointed)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    eprintln!("max |Δ grad| {err:.2e} (max |grad| {scale:.2e})");
    assert!(
        err <= 1e-5 * scale,
        "checkpointing changed the gradients by {err:.2e}"
    );
}
