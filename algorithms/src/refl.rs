//! ReFL (Xu et al., ImageReward): sample with the frozen policy down to a random stop step t,
//! then maximise r(x̂₀_θ(sg(x_t))): one differentiable ε-prediction from a detached state.

use bench_core::validate::{Invalid, Validate};
use burn::tensor::{backend::AutodiffBackend, Tensor};
use rand::{rngs::StdRng, Rng};
use serde::{Deserialize, Serialize};

use bench_core::{Family, FamilyMember};
use bench_envs::{Denoiser, DiffusionEnv, DiffusionModel, Inner};

use crate::algorithm::Algorithm;
use crate::registry::Objective;
use crate::reward_backprop::{
    truncated_rollout, BackpropAlgorithm, BackpropSettings, DifferentiableSampler,
};
use crate::row_draws::RowDraws;

/// The objective's own parameter, besides [`BackpropSettings`]'s.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReflOwn {
    /// The stop step's range, inclusive, in inference steps from the start (35..=49 of 50 in
    /// the official code).
    pub stop_steps: (usize, usize),
}

impl Default for ReflOwn {
    fn default() -> Self {
        Self {
            stop_steps: (35, 49),
        }
    }
}

impl Validate for ReflOwn {
    fn validate(&self) -> Result<(), Invalid> {
        let (lo, hi) = self.stop_steps;
        if lo > hi {
            return Err(Invalid::new(
                "stop_steps",
                format!("= ({lo}, {hi}) needs lo ≤ hi"),
            ));
        }
        Ok(())
    }
}

/// ReFL's sampler: x̂₀ of the policy at a detached state of a random late step.
pub struct Refl {
    pub stop_steps: (usize, usize),
}

impl<B: AutodiffBackend, E: DiffusionEnv<B>> DifferentiableSampler<B, E> for Refl {
    fn name(&self) -> &'static str {
        "refl"
    }

    fn samples(
        &self,
        env: &E,
        live: &E::Policy,
        frozen: &Inner<B, E::Policy>,
        prompts: &[usize],
        draws: &mut RowDraws<'_>,
    ) -> Tensor<B, 2> {
        let states = truncated_rollout(env, live, frozen, prompts, 0, draws);
        let (lo, hi) = self.stop_steps;
        let stops: Vec<usize> = draws.per_row(|rng| rng.random_range(lo..=hi));
        let x_t = stop_states(&states, &stops);
        let eps = env
            .train()
            .eps(Denoiser::Policy(live), x_t.clone(), &stops, prompts);
        env.scheduler().predict_x0(x_t, eps, &stops)
    }
}

/// Row i of `states[stops[i]]`, detached.
pub fn stop_states<B: AutodiffBackend>(states: &[Tensor<B, 2>], stops: &[usize]) -> Tensor<B, 2> {
    Tensor::cat(
        stops
            .iter()
            .enumerate()
            .map(|(i, &k)| states[k].clone().slice(i..i + 1).detach())
            .collect(),
        0,
    )
}

impl FamilyMember<BackpropSettings> for ReflOwn {}

impl Objective for Refl {
    type Params = Family<ReflOwn, BackpropSettings>;

    fn build<B: AutodiffBackend, E: DiffusionEnv<B> + 'static>(
        params: &Self::Params,
        env: &E,
        rng: &mut StdRng,
    ) -> Result<Box<dyn Algorithm<B, E>>, String> {
        let c = &params.own;
        let steps = env.scheduler().num_steps();
        let (lo, hi) = c.stop_steps;
        if lo > hi || hi >= steps {
            return Err(format!(
                "stop_steps = ({lo}, {hi}) must satisfy lo ≤ hi < {steps} (the sampler's steps)"
            ));
        }
        BackpropAlgorithm::boxed(
            params.shared.clone(),
            Refl {
                stop_steps: c.stop_steps,
            },
            env,
            rng,
        )
    }
}
