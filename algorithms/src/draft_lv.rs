//! DRaFT-LV (Clark et al., 2024): a sample x₀ is drawn without a graph, noised one step back
//! with the noising kernel, x′₁ ~ q(x₁|x₀), and denoised again with the policy,
//! x′₀ ~ p_θ(x₀|x′₁), differentiably; the reward of x′₀ is maximised. Several such
//! noise-and-denoise draws average out the variance of the last step's gradient.

use bench_core::validate::{self, Invalid, Validate};
use burn::tensor::{backend::AutodiffBackend, Tensor};
use rand::rngs::StdRng;
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
pub struct DraftLvOwn {
    /// Noise-and-denoise draws per sample (1 in ∇-GFlowNet's comparison).
    pub lv_samples: usize,
}

impl Default for DraftLvOwn {
    fn default() -> Self {
        Self { lv_samples: 1 }
    }
}

impl Validate for DraftLvOwn {
    fn validate(&self) -> Result<(), Invalid> {
        validate::at_least("lv_samples", self.lv_samples, 1)
    }
}

/// DRaFT-LV's sampler: every sample appears `lv_samples` times, each re-denoised once.
pub struct DraftLv {
    pub lv_samples: usize,
}

impl<B: AutodiffBackend, E: DiffusionEnv<B>> DifferentiableSampler<B, E> for DraftLv {
    fn name(&self) -> &'static str {
        "draft_lv"
    }

    fn samples(
        &self,
        env: &E,
        live: &E::Policy,
        frozen: &Inner<B, E::Policy>,
        prompts: &[usize],
        draws: &mut RowDraws<'_>,
    ) -> Tensor<B, 2> {
        let x0 = truncated_rollout(env, live, frozen, prompts, 0, draws)
            .pop()
            .expect("a rollout has a final state");
        let n = prompts.len();
        let last = vec![env.scheduler().num_steps() - 1; n];
        let redrawn: Vec<Tensor<B, 2>> = (0..self.lv_samples)
            .map(|_| {
                let x1 = env
                    .scheduler()
                    .noising_kernel(x0.clone(), &last)
                    .sample(draws.normal::<B>(env.dims(), env.device()));
                env.train()
                    .transition(Denoiser::Policy(live), x1, &last, prompts)
                    .sample(draws.normal::<B>(env.dims(), env.device()))
            })
            .collect();
        // Rows are averaged by the loss's mean: the draws of one sample weigh as one sample.
        Tensor::cat(redrawn, 0)
    }
}

impl FamilyMember<BackpropSettings> for DraftLvOwn {}

impl Objective for DraftLv {
    type Params = Family<DraftLvOwn, BackpropSettings>;

    fn build<B: AutodiffBackend, E: DiffusionEnv<B> + 'static>(
        params: &Self::Params,
        env: &E,
        rng: &mut StdRng,
    ) -> Result<Box<dyn Algorithm<B, E>>, String> {
        let c = &params.own;
        if c.lv_samples == 0 {
            return Err("lv_samples must be at least 1".into());
        }
        BackpropAlgorithm::boxed(
            params.shared.clone(),
            DraftLv {
                lv_samples: c.lv_samples,
            },
            env,
            rng,
        )
    }
}
