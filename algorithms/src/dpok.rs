//! DPOK (Fan et al., 2023): policy gradient on α·r(x₀) with a KL penalty to the pretrained
//! model on every step, KL(p_θ(·|x_t) ‖ p_base(·|x_t)) = ‖μ_θ − μ_base‖²/(2σ²) in closed form
//! (both transitions share σ). The policy term is PPO-clipped on per-step ratios, as in DDPO
//! (the loop of [`crate::policy_gradient`]).
//!
//! Without reward normalisation the objective E[α·r] − γ·Σ_t KL_t is KL-regularised RL on whole
//! trajectories, whose optimum is p_base(x₀)·exp(α·r(x₀)/γ): a tilted target we can check.

use bench_core::validate::{self, Invalid, Validate};
use burn::tensor::backend::AutodiffBackend;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use bench_core::{Family, FamilyMember};
use bench_envs::DiffusionEnv;

use crate::algorithm::Algorithm;
use crate::policy_gradient::{KlToBase, PolicyGradient, PolicyGradientSettings, PpoShared};
use crate::registry::Objective;

/// DPOK's own parameters, besides [`PpoShared`]'s; α = 10 and γ = 0.01 are the paper's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DpokOwn {
    /// α: the weight of the reward.
    pub reward_coef: f64,
    /// γ: the weight of the per-step KL to the pretrained model.
    pub kl_coef: f64,
    /// Divide per-prompt centred rewards by their std (DDPO's normalisation). Off, advantages
    /// are only centred, which keeps the optimum p_base·exp(α·r/γ).
    pub normalize: bool,
}

impl Default for DpokOwn {
    fn default() -> Self {
        Self {
            reward_coef: 10.0,
            kl_coef: 0.01,
            normalize: true,
        }
    }
}

impl Validate for DpokOwn {
    fn validate(&self) -> Result<(), Invalid> {
        validate::finite("reward_coef", self.reward_coef)?;
        validate::positive("kl_coef", self.kl_coef)
    }
}

impl FamilyMember<PpoShared> for DpokOwn {}

/// DPOK's registry entry.
pub struct Dpok;

impl Objective for Dpok {
    type Params = Family<DpokOwn, PpoShared>;

    fn build<B: AutodiffBackend, E: DiffusionEnv<B> + 'static>(
        params: &Self::Params,
        env: &E,
        rng: &mut StdRng,
    ) -> Result<Box<dyn Algorithm<B, E>>, String> {
        let own = &params.own;
        PolicyGradient::boxed(
            PolicyGradientSettings {
                shared: params.shared.clone(),
                name: "dpok",
                inner_epochs: 1,
                normalize: own.normalize,
                kl: Some(KlToBase {
                    reward_coef: own.reward_coef,
                    kl_coef: own.kl_coef,
                }),
            },
            env,
            rng,
        )
    }
}
