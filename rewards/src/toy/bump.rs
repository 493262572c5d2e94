//! The Gaussian-bump reward: `exp(β·r)` is a Gaussian, so both targets are closed form.

use bench_core::validate::{self, Invalid, Validate};
use burn::tensor::{backend::Backend, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use bench_models::{Component, GaussianMixture, Point};

use crate::reward::{TensorReward, ToyReward};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BumpConfig {
    pub centre: Point,
    /// exp(β·r) is N(centre, width²/β).
    pub width: f64,
}

impl Default for BumpConfig {
    fn default() -> Self {
        Self {
            centre: [0.6, 0.6],
            width: 0.5,
        }
    }
}

impl Validate for BumpConfig {
    fn validate(&self) -> Result<(), Invalid> {
        validate::finite("centre", self.centre[0])?;
        validate::finite("centre", self.centre[1])?;
        validate::positive("width", self.width)
    }
}

pub struct Bump {
    config: BumpConfig,
}

impl Bump {
    /// # Errors
    /// A non-positive width.
    pub fn new(config: BumpConfig) -> Result<Self, String> {
        if config.width <= 0.0 {
            return Err(format!("width = {} must be positive", config.width));
        }
        Ok(Self { config })
    }
}

impl TensorReward for Bump {
    fn name(&self) -> &str {
        "bump"
    }

    fn score<B: Backend>(&self, images: Tensor<B, 4>, _prompts: &[String]) -> Tensor<B, 1> {
        let x = super::points(images);
        let n = x.dims()[0];
        let c = [self.config.centre[0] as f32, self.config.centre[1] as f32];
        let centre = Tensor::<B, 2>::from_data(TensorData::new(c.to_vec(), [1, 2]), &x.device());
        let w2 = self.config.width * self.config.width;
        (x - centre)
            .powi_scalar(2)
            .sum_dim(1)
            .mul_scalar(-0.5 / w2)
            .reshape([n])
    }

    fn as_toy(&self) -> Option<&dyn ToyReward> {
        Some(self)
    }
}

impl ToyReward for Bump {
    fn value(&self, x: Point) -> f64 {
        let c = self.config.centre;
        -((x[0] - c[0]).powi(2) + (x[1] - c[1]).powi(2)) / (2.0 * self.config.width.powi(2))
    }

    fn power_mixture(&self, beta: f64) -> Option<GaussianMixture> {
        (beta > 0.0).then(|| {
            GaussianMixture::new(vec![Component {
                mean: self.config.centre,
                std: self.config.width / beta.sqrt(),
                weight: 1.0,
            }])
        })
    }

    fn tilted_mixture(&self, base: &GaussianMixture, beta: f64) -> Option<GaussianMixture> {
        (beta > 0.0)
            .then(|| base.times_gaussian(self.config.centre, self.config.width.powi(2) / beta))
    }

    fn modes(&self) -> GaussianMixture {
        GaussianMixture::new(vec![Component {
            mean: self.config.centre,
            std: self.config.width,
            weight: 1.0,
        }])
    }
}
