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

use crate::algorithm::Algorithm;
use crate::detailed_balance::{
    BackwardPolicy, DbAlgorithm, DbSettings, LookAheadModel, PolicyLoss,
};
use crate::optim::OptimConfig;

/// Residual DB's hyper-parameters (∇-GFlowNet Section 4.3: lr 3e-4, output regularisation 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResidualDbConfig {
    pub sample_batch: usize,
    pub train_batch: usize,
    /// Reward exponent β, in units of the sampler's log-prob reduction.
    pub beta: f64,
    pub beta_anneal: f64,
    pub reg_coef: f64,
    /// Whose x̂₀ the forward-looking term uses: `Current` (the paper's x̂_θ) or `Base`.
    pub look_ahead: LookAheadModel,
    pub optim: OptimConfig,
    pub flow_optim: OptimConfig,
}

impl Default for ResidualDbConfig {
    fn default() -> Self {
        Self {
            sample_batch: 64,
            train_batch: 32,
            beta: 100.0,
            beta_anneal: 0.0,
            reg_coef: 1.0,
            look_ahead: LookAheadModel::Current,
            optim: OptimConfig::default(),
            flow_optim: OptimConfig::default(),
        }
    }
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
        let c: ResidualDbConfig = bench_rewards::registry::params(params)?;
        DbAlgorithm::boxed(
            DbSettings {
                sample_batch: c.sample_batch,
                train_batch: c.train_batch,
                beta: c.beta,
                beta_anneal: c.beta_anneal,
                reg_coef: c.reg_coef,
                backward: BackwardPolicy::Pretrained,
                look_ahead: c.look_ahead,
                policy_loss: PolicyLoss::Balance,
                optim: c.optim,
                flow_optim: c.flow_optim,
            },
            env,
            rng,
        )
    }
}
