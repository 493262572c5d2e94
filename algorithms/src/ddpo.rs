//! DDPO (Black et al., 2023): PPO's clipped surrogate on per-step log-probability ratios, with
//! advantages normalised per prompt (the loop of [`crate::policy_gradient`]).

use bench_core::validate::{self, Invalid, Validate};
use burn::tensor::backend::AutodiffBackend;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use bench_core::{Family, FamilyMember};
use bench_envs::DiffusionEnv;

use crate::algorithm::Algorithm;
use crate::policy_gradient::{PolicyGradient, PolicyGradientSettings, PpoShared};
use crate::registry::Objective;

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

impl Validate for DdpoOwn {
    fn validate(&self) -> Result<(), Invalid> {
        validate::at_least("inner_epochs", self.inner_epochs, 1)
    }
}

impl FamilyMember<PpoShared> for DdpoOwn {}

/// DDPO's registry entry.
pub struct Ddpo;

impl Objective for Ddpo {
    type Params = Family<DdpoOwn, PpoShared>;

    fn build<B: AutodiffBackend, E: DiffusionEnv<B> + 'static>(
        params: &Self::Params,
        env: &E,
        rng: &mut StdRng,
    ) -> Result<Box<dyn Algorithm<B, E>>, String> {
        PolicyGradient::boxed(
            PolicyGradientSettings {
                shared: params.shared.clone(),
                name: "ddpo",
                inner_epochs: params.own.inner_epochs,
                normalize: true,
                kl: None,
            },
            env,
            rng,
        )
    }
}
