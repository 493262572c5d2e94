//! A plain SiLU multilayer perceptron, initialised from a caller's RNG.
//!
//! Initialising on the host from a seeded RNG (instead of the backend's global one) makes every
//! run reproducible even when several runs share a process.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{backend::Backend, Tensor, TensorData};

use crate::linear;
use crate::silu::silu;
use rand::Rng;

#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    pub layers: Vec<Linear<B>>,
}

/// A linear layer with PyTorch's default uniform bound `1/√fan_in`, or all zeros.
pub fn linear<B: Backend>(
    d_in: usize,
    d_out: usize,
    zero: bool,
    rng: &mut impl Rng,
    device: &B::Device,
) -> Linear<B> {
    let bound = 1.0 / (d_in as f64).sqrt();
    let mut draw = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| {
                if zero {
                    0.0
                } else {
                    rng.random_range(-bound..bound) as f32
                }
            })
            .collect()
    };
    let weight = Tensor::from_data(TensorData::new(draw(d_in * d_out), [d_in, d_out]), device);
    let bias = Tensor::from_data(TensorData::new(draw(d_out), [d_out]), device);
    Linear {
        weight: Param::from_tensor(weight),
        bias: Some(Param::from_tensor(bias)),
    }
}

impl<B: Backend> Mlp<B> {
    /// Layers of widths `dims[0] → dims[1] → … → dims[last]`; `zero_output` zero-initialises
    /// the last layer so that the network starts as the constant 0.
    pub fn new(dims: &[usize], zero_output: bool, rng: &mut impl Rng, device: &B::Device) -> Self {
        assert!(dims.len() >= 2, "an MLP needs an input and an output width");
        let n = dims.len() - 1;
        let layers = (0..n)
            .map(|i| linear(dims[i], dims[i + 1], zero_output && i + 1 == n, rng, device))
            .collect();
        Self { layers }
    }

    pub fn forward(&self, mut x: Tensor<B, 2>) -> Tensor<B, 2> {
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            x = linear::forward(layer, x);
            if i != last {
                x = silu(x);
            }
        }
        x
    }
}
