//! The mixture-density reward `r(x) = log Σ_j π_j N(x; m_j, σ_j²)`: multi-modal, so reward
//! maximisers collapse onto its highest peak while its `exp(β·r)` target keeps every mode.

use bench_core::validate::{self, Invalid, Validate};
use burn::tensor::{backend::Backend, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use bench_models::{Component, GaussianMixture, Point};

use crate::reward::{TensorReward, ToyReward};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MixtureConfig {
    pub components: Vec<Component>,
}

impl Default for MixtureConfig {
    /// Three unequal peaks at angles 0°, 90° and 180° of the unit circle (on `ring8` modes).
    fn default() -> Self {
        let c = |mean: Point, weight: f64| Component {
            mean,
            std: 0.25,
            weight,
        };
        Self {
            components: vec![c([1.0, 0.0], 0.5), c([0.0, 1.0], 0.3), c([-1.0, 0.0], 0.2)],
        }
    }
}

impl Validate for MixtureConfig {
    fn validate(&self) -> Result<(), Invalid> {
        if self.components.is_empty() {
            return Err(Invalid::new("components", "needs at least one component"));
        }
        for c in &self.components {
            validate::finite("components", c.mean[0])?;
            validate::finite("components", c.mean[1])?;
            validate::positive("components", c.std)?;
            validate::positive("components", c.weight)?;
        }
        Ok(())
    }
}

pub struct MixtureDensity {
    mixture: GaussianMixture,
}

impl MixtureDensity {
    /// # Errors
    /// No component, or a non-positive weight or std.
    pub fn new(config: MixtureConfig) -> Result<Self, String> {
        if config.components.is_empty()
            || config
                .components
                .iter()
                .any(|c| c.weight <= 0.0 || c.std <= 0.0)
        {
            return Err("components: need at least one, with positive weight and std".into());
        }
        Ok(Self {
            mixture: GaussianMixture::new(config.components),
        })
    }
}

impl TensorReward for MixtureDensity {
    fn name(&self) -> &str {
        "mixture"
    }

    fn score<B: Backend>(&self, images: Tensor<B, 4>, _prompts: &[String]) -> Tensor<B, 1> {
        let x = super::points(images);
        let n = x.dims()[0];
        let comps = self.mixture.components();
        let k = comps.len();
        let device = x.device();
        let means: Vec<f32> = comps
            .iter()
            .flat_map(|c| [c.mean[0] as f32, c.mean[1] as f32])
            .collect();
        let means = Tensor::<B, 3>::from_data(TensorData::new(means, [1, k, 2]), &device);
        let var: Vec<f32> = comps.iter().map(|c| (c.std * c.std) as f32).collect();
        let var = Tensor::<B, 2>::from_data(TensorData::new(var.clone(), [1, k]), &device);
        let log_norm: Vec<f32> = comps
            .iter()
            .map(|c| (c.weight.ln() - (2.0 * std::f64::consts::PI * c.std * c.std).ln()) as f32)
            .collect();
        let log_norm = Tensor::<B, 2>::from_data(TensorData::new(log_norm, [1, k]), &device);
        let d2 = (x.unsqueeze_dim::<3>(1) - means)
            .powi_scalar(2)
            .sum_dim(2)
            .reshape([n, k]);
        let logits = log_norm - d2.div(var).mul_scalar(0.5);
        // log-sum-exp, stabilised by the (detached) row maximum.
        let max = logits.clone().max_dim(1).detach();
        ((logits - max.clone()).exp().sum_dim(1).log() + max).reshape([n])
    }

    fn as_toy(&self) -> Option<&dyn ToyReward> {
        Some(self)
    }
}

impl ToyReward for MixtureDensity {
    fn value(&self, x: Point) -> f64 {
        self.mixture.log_density(x)
    }

    fn power_mixture(&self, beta: f64) -> Option<GaussianMixture> {
        (beta == 1.0).then(|| self.mixture.clone())
    }

    fn tilted_mixture(&self, _base: &GaussianMixture, _beta: f64) -> Option<GaussianMixture> {
        None
    }

    fn modes(&self) -> GaussianMixture {
        self.mixture.clone()
    }
}
