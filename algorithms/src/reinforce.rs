//! DAG-KL's policy loss (Zhang et al., Section 3.3): the REINFORCE gradient E[δ·∇log p_θ] of
//! KL(p_θ(·|x_t) ‖ F(x_{t−1})q(x_t|x_{t−1})/F(x_t)) (Proposition 4), as a PPO-clipped surrogate
//! whose advantage is −δ, leave-one-out normalised among the transitions of the same step and
//! clipped. On-policy its expected gradient is half of DAG-DB's (Remark 5).

use bench_core::validate::{self, Invalid, Validate};
use burn::tensor::{backend::AutodiffBackend, Tensor};
use serde::{Deserialize, Serialize};

use crate::util::vector;

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

/// The advantages A = −δ of transitions whose residuals come in shards (one per device of a
/// data-parallel step; a single one otherwise), each shard's stacked step-major in `steps`
/// groups of its trajectories. Normalisation happens within a step across every shard's
/// transitions of that step — as one device does over the whole minibatch: transitions of
/// different steps have different residual scales — and the clipped advantages come back per
/// shard in its own layout.
pub fn advantages(residuals: &[Vec<f64>], steps: usize, s: &ReinforceSettings) -> Vec<Vec<f64>> {
    let widths: Vec<usize> = residuals.iter().map(|r| r.len() / steps.max(1)).collect();
    debug_assert!(
        residuals
            .iter()
            .zip(&widths)
            .all(|(r, w)| r.len() == w * steps),
        "residuals come in `steps` groups per shard"
    );
    let mut out: Vec<Vec<f64>> = residuals.iter().map(|r| vec![0.0; r.len()]).collect();
    for k in 0..steps {
        let group: Vec<f64> = residuals
            .iter()
            .zip(&widths)
            .flat_map(|(r, &w)| r[k * w..(k + 1) * w].iter().map(|d| -d))
            .collect();
        let advantages = if s.normalize {
            leave_one_out(&group)
        } else if s.baseline {
            leave_one_out_centred(&group)
        } else {
            group
        };
        let mut from = 0;
        for (shard, &w) in out.iter_mut().zip(&widths) {
            for (slot, a) in shard[k * w..(k + 1) * w]
                .iter_mut()
                .zip(&advantages[from..from + w])
            {
                *slot = a.clamp(-s.adv_clip_max, s.adv_clip_max);
            }
            from += w;
        }
    }
    out
}

/// The policy's loss: mean over transitions of max(−A·ρ, −A·clip(ρ, 1 ± ε)), ρ = p_θ/p_old,
/// with the transitions' `advantages` (see [`advantages`]).
pub fn reinforce_surrogate<B: AutodiffBackend>(
    log_pf: Tensor<B, 1>,
    log_pf_old: Tensor<B, 1>,
    advantages: &[f64],
    s: &ReinforceSettings,
) -> Tensor<B, 1> {
    let device = log_pf.device();
    crate::ppo::clipped_surrogate(
        log_pf - log_pf_old,
        vector::<B>(advantages, &device),
        s.clip_range,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Advantages of a minibatch split over devices equal the unsplit minibatch's, row for
    /// row: normalisation is across every shard's transitions of a step.
    #[test]
    fn advantages_of_shards_equal_the_whole_minibatchs() {
        let (steps, trajectories) = (3, 5);
        // Step-major: residual of trajectory j at step k.
        let residual = |k: usize, j: usize| ((k * 7 + j * 3) % 11) as f64 * 0.4 - 1.5 * k as f64;
        let stack = |js: &[usize]| -> Vec<f64> {
            (0..steps)
                .flat_map(|k| js.iter().map(move |&j| residual(k, j)))
                .collect()
        };
        for settings in [
            ReinforceSettings::default(),
            ReinforceSettings {
                normalize: false,
                ..Default::default()
            },
            ReinforceSettings {
                normalize: false,
                baseline: false,
                adv_clip_max: 1.0,
                ..Default::default()
            },
        ] {
            let whole = advantages(&[stack(&[0, 1, 2, 3, 4])], steps, &settings).remove(0);
            let split = advantages(&[stack(&[0, 1]), stack(&[2, 3, 4])], steps, &settings);
            for (shard, js) in split.iter().zip([vec![0, 1], vec![2, 3, 4]]) {
                for k in 0..steps {
                    for (i, &j) in js.iter().enumerate() {
                        let got = shard[k * js.len() + i];
                        let want = whole[k * trajectories + j];
                        assert!((got - want).abs() < 1e-12, "step {k}, trajectory {j}");
                    }
                }
            }
            assert!(whole.iter().any(|a| *a != 0.0));
        }
    }
}
