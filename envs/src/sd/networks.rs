//! SD's trainable networks besides the LoRA, as the environment trait names them.

use burn::module::Module;
use burn::tensor::{backend::Backend, Tensor};
use rand::rngs::StdRng;

use bench_models::sd::{UNetConfig, UNetField, UNetFlowHead};

/// Flows and values: a small UNet's down path and a zero-initialised linear head.
#[derive(Module, Debug)]
pub struct SdStateNet<B: Backend> {
    pub net: UNetFlowHead<B>,
}

impl<B: Backend> SdStateNet<B> {
    pub fn new(config: &UNetConfig, rng: &mut StdRng, device: &B::Device) -> Self {
        Self {
            net: UNetFlowHead::new(config, rng, device),
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>, t: Tensor<B, 1>, context: Tensor<B, 3>) -> Tensor<B, 1> {
        self.net.forward(x, t, context)
    }
}

/// A vector field of the latents: a small UNet whose output starts at zero.
#[derive(Module, Debug)]
pub struct SdFieldNet<B: Backend> {
    pub net: UNetField<B>,
}

impl<B: Backend> SdFieldNet<B> {
    pub fn new(config: &UNetConfig, rng: &mut StdRng, device: &B::Device) -> Self {
        Self {
            net: UNetField::new(config, rng, device),
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>, t: Tensor<B, 1>, context: Tensor<B, 3>) -> Tensor<B, 4> {
        self.net.forward(x, t, context)
    }
}
