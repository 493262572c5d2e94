//! The toy's trainable networks: the policy adapter (an MLP over x_t, time and prompt whose
//! zero output layer makes the untrained policy the base model) and the state network
//! (flows, values).

use burn::module::Module;
use burn::tensor::{backend::Backend, Tensor, TensorData};
use rand::rngs::StdRng;

use bench_models::{sinusoidal_embedding, Mlp};

/// How network inputs are built: `[x (2), sinusoidal(t), one-hot(prompt or null)]`.
#[derive(Clone, Debug)]
pub struct Features {
    pub time_features: usize,
    pub num_prompts: usize,
}

impl Features {
    pub fn width(&self) -> usize {
        2 + self.time_features + self.num_prompts + 1
    }

    /// Condition rows: the prompt index, or `num_prompts` (the null condition) for `None`.
    pub fn condition_rows(&self, prompts: Option<&[usize]>, n: usize) -> Vec<usize> {
        match prompts {
            Some(p) => p.to_vec(),
            None => vec![self.num_prompts; n],
        }
    }

    pub fn build<B: Backend>(
        &self,
        x: Tensor<B, 2>,
        timesteps: &[f64],
        rows: &[usize],
        device: &B::Device,
    ) -> Tensor<B, 2> {
        let n = rows.len();
        let classes = self.num_prompts + 1;
        let mut one_hot = vec![0.0f32; n * classes];
        for (i, &r) in rows.iter().enumerate() {
            one_hot[i * classes + r] = 1.0;
        }
        let one_hot = Tensor::from_data(TensorData::new(one_hot, [n, classes]), device);
        let time = sinusoidal_embedding::<B>(timesteps, self.time_features, device);
        Tensor::cat(vec![x, time, one_hot], 1)
    }
}

/// The policy's trainable correction to the exact ε.
#[derive(Module, Debug)]
pub struct ToyPolicy<B: Backend> {
    pub adapter: Mlp<B>,
}

impl<B: Backend> ToyPolicy<B> {
    pub fn new(features: &Features, hidden: usize, rng: &mut StdRng, device: &B::Device) -> Self {
        Self {
            adapter: Mlp::new(&[features.width(), hidden, hidden, 2], true, rng, device),
        }
    }

    pub fn forward(&self, input: Tensor<B, 2>) -> Tensor<B, 2> {
        self.adapter.forward(input)
    }
}

/// A scalar network of the state; its zero-initialised output makes a forward-looking flow
/// start at the reward term alone.
#[derive(Module, Debug)]
pub struct ToyStateNet<B: Backend> {
    pub mlp: Mlp<B>,
}

impl<B: Backend> ToyStateNet<B> {
    pub fn new(features: &Features, hidden: usize, rng: &mut StdRng, device: &B::Device) -> Self {
        Self {
            mlp: Mlp::new(&[features.width(), hidden, hidden, 1], true, rng, device),
        }
    }

    pub fn forward(&self, input: Tensor<B, 2>) -> Tensor<B, 1> {
        let n = input.dims()[0];
        self.mlp.forward(input).reshape([n])
    }
}

/// A vector field of the state (∇-GFlowNet's g_φ), zero at initialisation.
#[derive(Module, Debug)]
pub struct ToyFieldNet<B: Backend> {
    pub mlp: Mlp<B>,
}

impl<B: Backend> ToyFieldNet<B> {
    pub fn new(features: &Features, hidden: usize, rng: &mut StdRng, device: &B::Device) -> Self {
        Self {
            mlp: Mlp::new(&[features.width(), hidden, hidden, 2], true, rng, device),
        }
    }

    pub fn forward(&self, input: Tensor<B, 2>) -> Tensor<B, 2> {
        self.mlp.forward(input)
    }
}
