//! DAG-KL's policy loss (Zhang et al., Section 3.3): the REINFORCE gradient E[δ·∇log p_θ] of
//! KL(p_θ(·|x_t) ‖ F(x_{t−1})q(x_t|x_{t−1})/F(x_t)) (Proposition 4), as a PPO-clipped surrogate
//! whose advantage is −δ, leave-one-out normalised among the transitions of the same step and
//! clipped. On-policy its expected gradient is half of DAG-DB's (Remark 5).

use bench_core::validate::{self, Invalid, Validate};
use burn::tensor::{backend::AutodiffBackend, Tensor};
use serde::{Deserialize, Serialize};

use crate::util::{to_f64, vector};

/// How the REINFORCE surrogate is formed: DAG-KL's own parameters, besides the detailed-balance
/// family's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReinforceSettings {
    /// PPO clip range on the ratio (1e-4 for averaged log-probs).
    pub clip_range: f64,
    /// Advantages are clipped to ±this (5).
    pub adv_clip_max: f64,
    /// Weight of the surrogate in the policy's loss (the reference code's `klpf`).
    pub kl_coef: f64,
    /// Leave-one-out normalisation of the advantages (the reference code's): centred on the
    /// others' mean and scaled by their spread.
    pub normalize: bool,
    /// Without normalisation: centre on the others' mean only (an unbiased baseline, so the
    /// expected gradient stays E[δ·∇log p_θ], with less variance), or use −δ as it is.
    pub baseline: bool,
}

impl Default for ReinforceSettings {
    fn default() -> Self {
        Self {
            clip_range: 1e-4,
            adv_clip_max: 5.0,
            kl_coef: 1.0,
            normalize: true,
            baseline: true,
        }
    }
}

impl Validate for ReinforceSettings {
    fn validate(&self) -> Result<(), Invalid> {
        validate::positive("clip_range", self.clip_range)?;
        validate::positive("adv_clip_max", self.adv_clip_max)?;
        validate::non_negative("kl_coef", self.kl_coef)
    }
}

/// Each value minus the mean of the others: a baseline independent of the value itself.
pub fn leave_one_out_centred(values: &[f64]) -> Vec<f64> {
    let n = values.len();
    if n < 2 {
        return vec![0.0; n];
    }
    let total: f64 = values.iter().sum();
    values
        .iter()
        .map(|v| v - (total - v) / (n - 1) as f64)
        .collect()
}

/// Leave-one-out normalisation of `values`: each is centred on the mean of the others and
/// scaled by their spread around their own baselines.
pub fn leave_one_out(values: &[f64]) -> Vec<f64> {
    let n = values.len();
    let centred = leave_one_out_centred(values);
    if n < 2 {
        return centred;
    }
    let squares: Vec<f64> = centred.iter().map(|c| c * c).collect();
    let sq_total: f64 = squares.iter().sum();
    centred
        .iter()
        .zip(&squares)
        .map(|(c, s)| c / (((sq_total - s) / (n - 1) as f64).sqrt() + 1e-8))
        .collect()
}

/// The policy's loss: mean over transitions of max(−A·ρ, −A·clip(ρ, 1 ± ε)), ρ = p_θ/p_old,
/// A = −δ. Rows are stacked step-major in groups of `group` (one per step), and normalisation
/// happens within a group: transitions of different steps have different residual scales.
pub fn reinforce_surrogate<B: AutodiffBackend>(
    log_pf: Tensor<B, 1>,
    log_pf_old: Tensor<B, 1>,
    residual: Tensor<B, 1>,
    group: usize,
    s: &ReinforceSettings,
) -> Tensor<B, 1> {
    let device = log_pf.device();
    let reward: Vec<f64> = to_f64(residual).into_iter().map(|d| -d).collect();
    let advantages: Vec<f64> = if s.normalize {
        reward.chunks(group).flat_map(leave_one_out).collect()
    } else if s.baseline {
        reward
            .chunks(group)
            .flat_map(leave_one_out_centred)
            .collect()
    } else {
        reward
    }
    .into_iter()
    .map(|a| a.clamp(-s.adv_clip_max, s.adv_clip_max))
    .collect();
    crate::ppo::clipped_surrogate(
        log_pf - log_pf_old,
        vector::<B>(&advantages, &device),
        s.clip_range,
    )
}
