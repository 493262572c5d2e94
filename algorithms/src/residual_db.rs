//! Residual DB (∇-GFlowNet, Eq. 20): forward-looking detailed balance of the *residual*
//! policy p_θ/p_base towards p_base·R^β,
//!
//! δ = log p_θ(x_{t−1}|x_t) − log p_base(x_{t−1}|x_t) − log F̃(x_{t−1}) + log F̃(x_t),
//! log F̃(x) = β·r(x̂₀(x)) + g_φ(x),   log F̃(x₀) = β·r(x₀).
//!
//! Eq. 20 prints only the x_{t−1} side; with both sides the per-step residuals telescope over a
//! trajectory to the relative trajectory balance of Appendix B.4 (Eq. 49), which is what makes
//! p_base·R^β the fixed point. Written out, this is DAG-DB with the pretrained denoiser as the
//! backward policy (DAG's Remark 3), so it runs on the same loop.

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

/// Residual DB's own parameter, besides [`DbShared`]'s.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResidualDbOwn {
    /// Whose x̂₀ the forward-looking term uses: `Current` (the paper's x̂_θ) or `Base`.
    pub look_ahead: LookAheadModel,
}

impl Validate for ResidualDbOwn {}

/// ∇-GFlowNet Section 4.3: 64 trajectories per epoch, 32 per update, no β annealing; lr 3e-4
/// and output regularisation 1 are DAG's defaults too.
impl FamilyMember<DbShared> for ResidualDbOwn {
    fn shared_defaults() -> DbShared {
        DbShared {
            sample_batch: 64,
            train_batch: 32,
            beta_anneal: 0.0,
            ..DbShared::default()
        }
    }
}

/// Residual DB's registry entry.
pub struct ResidualDb;

impl Objective for ResidualDb {
    type Params = Family<ResidualDbOwn, DbShared>;

    fn build<B: AutodiffBackend, E: DiffusionEnv<B> + 'static>(
        params: &Self::Params,
        env: &E,
        rng: &mut StdRng,
    ) -> Result<Box<dyn Algorithm<B, E>>, String> {
        DbAlgorithm::boxed(
            DbSettings {
                shared: params.shared.clone(),
                backward: BackwardPolicy::Pretrained,
                look_ahead: params.own.look_ahead,
                policy_loss: PolicyLoss::Balance,
                balance: Balance::Detailed,
            },
            env,
            rng,
        )
    }
}
