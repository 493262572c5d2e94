//! Diagonal Gaussians with a per-row scale: the transition kernels of every sampler.

use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};

/// How a log-probability is reduced over the sample's dimensions.
///
/// DDPO's and DAG's code average over the 4×64×64 latent dimensions; their clip range 1e-4 and
/// β = 100 only make sense under that convention. `Sum` is the true log-density.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogProbReduction {
    #[default]
    Mean,
    Sum,
}

impl LogProbReduction {
    /// The factor from a reduced log-probability back to the true log-density.
    pub fn to_sum_factor(self, dims: usize) -> f64 {
        match self {
            Self::Mean => dims as f64,
            Self::Sum => 1.0,
        }
    }

    /// Per-dimension terms `[N, D]` reduced to one value per row `[N]`.
    pub fn reduce<B: Backend>(self, per_dim: Tensor<B, 2>) -> Tensor<B, 1> {
        match self {
            Self::Mean => per_dim.mean_dim(1),
            Self::Sum => per_dim.sum_dim(1),
        }
        .squeeze_dim(1)
    }
}

/// `N(mean, std² I)` row by row: `mean [N, D]`, `std [N, 1]`.
#[derive(Clone, Debug)]
pub struct DiagGaussian<B: Backend> {
    pub mean: Tensor<B, 2>,
    pub std: Tensor<B, 2>,
}

const HALF_LOG_2PI: f64 = 0.918_938_533_204_672_7;

impl<B: Backend> DiagGaussian<B> {
    /// Log-density of `x` under each row's Gaussian, reduced over dimensions: `[N]`.
    pub fn log_prob(&self, x: Tensor<B, 2>, reduction: LogProbReduction) -> Tensor<B, 1> {
        let z = (x - self.mean.clone()) / self.std.clone();
        let per_dim = z.powi_scalar(2).mul_scalar(-0.5) - self.std.clone().log() - HALF_LOG_2PI;
        reduction.reduce(per_dim)
    }

    /// `mean + std · noise` for standard normal `noise`.
    pub fn sample(&self, noise: Tensor<B, 2>) -> Tensor<B, 2> {
        self.mean.clone() + self.std.clone() * noise
    }
}
