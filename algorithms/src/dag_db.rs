//! DAG-DB (Zhang et al., "Improving GFlowNets for text-to-image diffusion alignment"):
//! detailed balance on every denoising transition with a forward-looking flow, the loss being
//! δ² of [`crate::detailed_balance`] for both the policy and the flow.
//!
//! p_B is the noising kernel q (target ∝ exp(β·r)) or, with `tilted` (the paper's Remark 3),
//! the pretrained denoiser (target ∝ p_base·exp(β·r)); the output is regularised towards the
//! guided ε of the model that sampled the epoch (a trust region, coefficient 1 in the paper).

use bench_core::Validate;
use burn::tensor::backend::AutodiffBackend;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use bench_core::{Family, FamilyMember};
use bench_envs::DiffusionEnv;

use crate::algorithm::Algorithm;
use crate::detailed_balance::{
    BackwardPolicy, DbAlgorithm, DbSettings, DbShared, LookAheadModel, PolicyLoss,
};
use crate::registry::Objective;
use crate::sub_trajectory::Balance;

/// DAG-DB's own parameter, besides [`DbShared`]'s.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DagDbOwn {
    /// Remark 3: the pretrained denoiser replaces the noising kernel as backward policy.
    pub tilted: bool,
}

impl FamilyMember<DbShared> for DagDbOwn {}

impl Validate for DagDbOwn {}

/// DAG-DB's registry entry.
pub struct DagDb;

impl Objective for DagDb {
    type Params = Family<DagDbOwn, DbShared>;

    fn build<B: AutodiffBackend, E: DiffusionEnv<B> + 'static>(
        params: &Self::Params,
        env: &E,
        rng: &mut StdRng,
    ) -> Result<Box<dyn Algorithm<B, E>>, String> {
        let backward = if params.own.tilted {
            BackwardPolicy::Pretrained
        } else {
            BackwardPolicy::Noising
        };
        DbAlgorithm::boxed(
            DbSettings {
                shared: params.shared.clone(),
                backward,
                look_ahead: LookAheadModel::Current,
                policy_loss: PolicyLoss::Balance,
                balance: Balance::Detailed,
            },
            env,
            rng,
        )
    }
}
