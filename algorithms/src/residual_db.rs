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

use burn::tensor::backend::AutodiffBackend;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use bench_envs::DiffusionEnv;
use bench_rewards::registry::split_params;

use crate::algorithm::Algorithm;
use crate::detailed_balance::{
    BackwardPolicy, DbAlgorithm, DbSettings, DbShared, LookAheadModel, PolicyLoss,
};

/// Residual DB's own parameter, besides [`DbShared`]'s.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResidualDbOwn {
    /// Whose x̂₀ the forward-looking term uses: `"Current"` (the paper's x̂_θ) or `"Base"`.
    pub look_ahead: LookAheadModel,
}

/// Residual DB's registry entry.
pub struct ResidualDb;

impl ResidualDb {
    /// # Errors
    /// Invalid parameters.
    pub fn build<B: AutodiffBackend, E: DiffusionEnv<B> + 'static>(
        params: &ron::Value,
        env: &E,
        rng: &mut StdRng,
    ) -> Result<Box<dyn Algorithm<B, E>>, String> {
        // ∇-GFlowNet Section 4.3: 64 trajectories per epoch, 32 per update, no β annealing;
        // lr 3e-4 and output regularisation 1 are DAG's defaults too.
        let defaults = [
            ("sample_batch", ron::Value::from(64u64)),
            ("train_batch", ron::Value::from(32u64)),
            ("beta_anneal", ron::Value::from(0.0)),
        ];
        let (own, shared): (ResidualDbOwn, DbShared) =
            split_params(params, &["look_ahead"], &defaults)?;
        DbAlgorithm::boxed(
            DbSettings {
                shared,
                backward: BackwardPolicy::Pretrained,
                look_ahead: own.look_ahead,
                policy_loss: PolicyLoss::Balance,
            },
            env,
            rng,
        )
    }
}
