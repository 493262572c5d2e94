//! DDPO (Black et al., 2023): PPO's clipped surrogate on per-step log-probability ratios, with
//! advantages normalised per prompt (the loop of [`crate::policy_gradient`]).

use burn::tensor::backend::AutodiffBackend;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use bench_envs::DiffusionEnv;
use bench_rewards::registry::split_params;

use crate::algorithm::Algorithm;
use crate::policy_gradient::{PolicyGradient, PolicyGradientSettings, PpoShared};

/// DDPO's own parameter, besides [`PpoShared`]'s.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DdpoOwn {
    /// Passes over each epoch's samples (1).
    pub inner_epochs: usize,
}

impl Default for DdpoOwn {
    fn default() -> Self {
        Self { inner_epochs: 1 }
    }
}

/// DDPO's registry entry.
pub struct Ddpo;

impl Ddpo {
    /// # Errors
    /// Invalid parameters.
    pub fn build<B: AutodiffBackend, E: DiffusionEnv<B> + 'static>(
        params: &ron::Value,
        env: &E,
        rng: &mut StdRng,
    ) -> Result<Box<dyn Algorithm<B, E>>, String> {
        let (own, shared): (DdpoOwn, PpoShared) = split_params(params, &["inner_epochs"], &[])?;
        PolicyGradient::boxed(
            PolicyGradientSettings {
                shared,
                name: "ddpo",
                inner_epochs: own.inner_epochs,
                normalize: true,
                kl: None,
            },
            env,
            rng,
        )
    }
}
