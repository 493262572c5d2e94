//! DAG-DB (Zhang et al., "Improving GFlowNets for text-to-image diffusion alignment"):
//! detailed balance on every denoising transition with a forward-looking flow, the loss being
//! δ² of [`crate::detailed_balance`] for both the policy and the flow.
//!
//! p_B is the noising kernel q (target ∝ exp(β·r)) or, with `tilted` (the paper's Remark 3),
//! the pretrained denoiser (target ∝ p_base·exp(β·r)); the output is regularised towards the
//! guided ε of the model that sampled the epoch (a trust region, coefficient 1 in the paper).

use burn::tensor::backend::AutodiffBackend;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use bench_envs::DiffusionEnv;

use crate::algorithm::Algorithm;
use crate::detailed_balance::{
    BackwardPolicy, DbAlgorithm, DbSettings, LookAheadModel, PolicyLoss,
};
use crate::optim::OptimConfig;

/// DAG-DB's hyper-parameters; defaults are the paper's (Appendix B.2) and its code's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DagDbConfig {
    /// Trajectories sampled per epoch (512).
    pub sample_batch: usize,
    /// Trajectories per optimizer step, all their transitions trained (256 = 8 × 8 × 4
    /// accumulation; 8 optimizer steps per epoch in the paper would be 64 here).
    pub train_batch: usize,
    /// Final reward exponent β (100, for log-probs averaged over dimensions).
    pub beta: f64,
    /// Fraction of training over which β rises linearly from 0 to `beta` (0.5).
    pub beta_anneal: f64,
    /// Weight of mean (ε_θ − ε_sampler)² (1).
    pub reg_coef: f64,
    /// Remark 3: the pretrained denoiser replaces the noising kernel as backward policy.
    pub tilted: bool,
    /// Optimizer of the policy (LoRA: lr 3e-4).
    pub optim: OptimConfig,
    /// Optimizer of the flow network (lr 3e-4).
    pub flow_optim: OptimConfig,
}

impl Default for DagDbConfig {
    fn default() -> Self {
        Self {
            sample_batch: 512,
            train_batch: 64,
            beta: 100.0,
            beta_anneal: 0.5,
            reg_coef: 1.0,
            tilted: false,
            optim: OptimConfig::default(),
            flow_optim: OptimConfig::default(),
        }
    }
}

/// DAG-DB's registry entry.
pub struct DagDb;

impl DagDb {
    /// # Errors
    /// Invalid parameters.
    pub fn build<B: AutodiffBackend, E: DiffusionEnv<B> + 'static>(
        params: &ron::Value,
        env: &E,
        rng: &mut StdRng,
    ) -> Result<Box<dyn Algorithm<B, E>>, String> {
        let c: DagDbConfig = bench_rewards::registry::params(params)?;
        DbAlgorithm::boxed(
            DbSettings {
                sample_batch: c.sample_batch,
                train_batch: c.train_batch,
                beta: c.beta,
                beta_anneal: c.beta_anneal,
                reg_coef: c.reg_coef,
                backward: if c.tilted {
                    BackwardPolicy::Pretrained
                } else {
                    BackwardPolicy::Noising
                },
                look_ahead: LookAheadModel::Current,
                policy_loss: PolicyLoss::Balance,
                optim: c.optim,
                flow_optim: c.flow_optim,
            },
            env,
            rng,
        )
    }
}
