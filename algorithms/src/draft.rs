//! DRaFT-K (Clark et al., 2024): backpropagate r(x₀) through the last K sampling steps, the
//! earlier ones run without a graph. DRaFT-1 is K = 1; K = all steps is full backpropagation
//! through the sampler (AlignProp without checkpointing).

use bench_core::validate::{self, Invalid, Validate};
use burn::tensor::{backend::AutodiffBackend, Tensor};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use bench_core::{Family, FamilyMember};
use bench_envs::{DiffusionEnv, Inner};

use crate::algorithm::Algorithm;
use crate::registry::Objective;
use crate::reward_backprop::{
    truncated_rollout, BackpropAlgorithm, BackpropSettings, DifferentiableSampler,
};
use crate::row_draws::RowDraws;

/// The objective's own parameter, besides [`BackpropSettings`]'s.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DraftOwn {
    /// Sampling steps the gradient flows through (1 = DRaFT-1).
    pub k: usize,
}

impl Default for DraftOwn {
    fn default() -> Self {
        Self { k: 1 }
    }
}

impl Validate for DraftOwn {
    fn validate(&self) -> Result<(), Invalid> {
        validate::at_least("k", self.k, 1)
    }
}

/// DRaFT-K's sampler: a rollout whose last `k` steps keep their graph.
pub struct Draft {
    pub k: usize,
}

impl<B: AutodiffBackend, E: DiffusionEnv<B>> DifferentiableSampler<B, E> for Draft {
    fn name(&self) -> &'static str {
        "draft"
    }

    fn samples(
        &self,
        env: &E,
        live: &E::Policy,
        frozen: &Inner<B, E::Policy>,
        prompts: &[usize],
        draws: &mut RowDraws<'_>,
    ) -> Tensor<B, 2> {
        truncated_rollout(env, live, frozen, prompts, self.k, draws)
            .pop()
            .expect("a rollout has a final state")
    }
}

impl FamilyMember<BackpropSettings> for DraftOwn {}

impl Objective for Draft {
    type Params = Family<DraftOwn, BackpropSettings>;

    fn build<B: AutodiffBackend, E: DiffusionEnv<B> + 'static>(
        params: &Self::Params,
        env: &E,
        rng: &mut StdRng,
    ) -> Result<Box<dyn Algorithm<B, E>>, String> {
        let c = &params.own;
        let steps = env.scheduler().num_steps();
        if c.k == 0 || c.k > steps {
            return Err(format!(
                "k = {} must be in 1..={steps} (the sampler's steps)",
                c.k
            ));
        }
        BackpropAlgorithm::boxed(params.shared.clone(), Draft { k: c.k }, env, rng)
    }
}
