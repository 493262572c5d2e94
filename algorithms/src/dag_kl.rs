//! DAG-KL (Zhang et al., Section 3.3): the flow learns from the detailed-balance loss with
//! log p_θ detached; the policy from the REINFORCE-KL surrogate of [`crate::reinforce`].

use burn::tensor::backend::AutodiffBackend;
use rand::rngs::StdRng;

use bench_core::{Family, FamilyMember};
use bench_envs::DiffusionEnv;

use crate::algorithm::Algorithm;
use crate::detailed_balance::{
    BackwardPolicy, DbAlgorithm, DbSettings, DbShared, LookAheadModel, PolicyLoss,
};
use crate::registry::Objective;
use crate::reinforce::ReinforceSettings;
use crate::sub_trajectory::Balance;

impl FamilyMember<DbShared> for ReinforceSettings {}

/// DAG-KL's registry entry.
pub struct DagKl;

impl Objective for DagKl {
    type Params = Family<ReinforceSettings, DbShared>;

    fn build<B: AutodiffBackend, E: DiffusionEnv<B> + 'static>(
        params: &Self::Params,
        env: &E,
        rng: &mut StdRng,
    ) -> Result<Box<dyn Algorithm<B, E>>, String> {
        let own = &params.own;
        if own.clip_range <= 0.0 || own.adv_clip_max <= 0.0 {
            return Err("clip_range and adv_clip_max must be positive".into());
        }
        DbAlgorithm::boxed(
            DbSettings {
                shared: params.shared.clone(),
                backward: BackwardPolicy::Noising,
                look_ahead: LookAheadModel::Current,
                policy_loss: PolicyLoss::Reinforce(own.clone()),
                balance: Balance::Detailed,
            },
            env,
            rng,
        )
    }
}
