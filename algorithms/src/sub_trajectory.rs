//! Balance over sub-trajectories of the denoising chain instead of single transitions.
//!
//! The detailed-balance residuals δ_k of one trajectory telescope: the flows of the states in
//! between cancel, so Σ_{k=i}^{j−1} δ_k is the balance of the sub-trajectory x_i → … → x_j.
//! With S_j = Σ_{k<j} δ_k:
//!
//! - detailed balance (DB) trains every δ_k² (sub-trajectories of length 1);
//! - trajectory balance (TB) trains (S_T − S_0)² only: the whole chain, its error no longer spread
//!   over 50 steps whose last ones cannot balance on fixed-variance Gaussian kernels; with the
//!   pretrained denoiser as backward policy this is the relative TB of ∇-GFlowNet's Appendix B.4;
//! - SubTB(λ) (Madan et al., 2023) trains every (S_j − S_i)², i < j, weighted by λ^{j−i} and
//!   normalised: λ → 0 is DB, λ → ∞ is TB, λ = 1 weighs every sub-trajectory alike.

use burn::tensor::{backend::Backend, Tensor, TensorData};

/// Which sub-trajectories the balance loss trains.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Balance {
    /// Every transition (DAG-DB, DAG-KL, residual DB).
    Detailed,
    /// Every sub-trajectory, weighted by λ^length.
    SubTrajectory { lambda: f64 },
    /// The whole chain.
    Trajectory,
}

/// Down-weighting of the last transitions in detailed balance: on fixed-variance Gaussian steps
/// they cannot balance (≈ 3 nats² at the second-to-last of 50, even at the exact solution), and
/// their residuals drown the signal of the rest of the chain.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TailWeight {
    /// Transitions at the end of the chain the weight applies to.
    pub steps: usize,
    /// Their weight against 1 for the others.
    pub weight: f64,
}

impl TailWeight {
    /// Every transition alike.
    pub const NONE: Self = Self {
        steps: 0,
        weight: 1.0,
    };

    fn of(self, k: usize, steps: usize) -> f64 {
        if k + self.steps >= steps {
            self.weight
        } else {
            1.0
        }
    }
}

/// The normalised weight of each sub-trajectory (i, j), i < j ≤ `steps`, row-major over a
/// `(steps + 1)²` grid (0 where i ≥ j). Computed in log space: λ^50 overflows f32.
pub fn weights(balance: Balance, steps: usize) -> Vec<f64> {
    let n = steps + 1;
    let mut log_w = vec![f64::NEG_INFINITY; n * n];
    for i in 0..n {
        for j in i + 1..n {
            log_w[i * n + j] = match balance {
                Balance::Detailed if j == i + 1 => 0.0,
                Balance::Trajectory if i == 0 && j == steps => 0.0,
                Balance::SubTrajectory { lambda } => (j - i) as f64 * lambda.ln(),
                _ => f64::NEG_INFINITY,
            };
        }
    }
    let max = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let total: f64 = log_w.iter().map(|l| (l - max).exp()).sum();
    log_w.iter().map(|l| (l - max).exp() / total).collect()
}

/// The balance loss of residuals `delta` stacked step-major (`[steps · m]`, row k·m + i being
/// transition k of trajectory i, as `Trajectory::stack` orders them): the mean over the `m`
/// trajectories of Σ_{i<j} w_ij (S_j − S_i)².
///
/// With [`Balance::Detailed`], `tail` weighs the last transitions: Σ_k w_k δ_k² over Σ_k w_k.
pub fn balance_loss<B: Backend>(
    delta: Tensor<B, 1>,
    m: usize,
    steps: usize,
    balance: Balance,
    tail: TailWeight,
) -> Tensor<B, 1> {
    if balance != Balance::Detailed {
        return weighted_loss(delta, m, steps, balance);
    }
    if tail.weight == 1.0 || tail.steps == 0 {
        // The same value as the weighted form (tested), in the order DAG-DB always summed it.
        return delta.powi_scalar(2).mean();
    }
    let w: Vec<f64> = (0..steps).map(|k| tail.of(k, steps)).collect();
    let total: f64 = w.iter().sum::<f64>() * m as f64;
    let rows: Vec<f32> = w
        .iter()
        .flat_map(|&w| std::iter::repeat_n((w / total) as f32, m))
        .collect();
    let device = delta.device();
    (delta.powi_scalar(2) * Tensor::from_data(TensorData::new(rows, [steps * m]), &device)).sum()
}

/// Σ_{i<j} w_ij (S_j − S_i)² averaged over trajectories, for any [`Balance`].
fn weighted_loss<B: Backend>(
    delta: Tensor<B, 1>,
    m: usize,
    steps: usize,
    balance: Balance,
) -> Tensor<B, 1> {
    let device = delta.device();
    let n = steps + 1;
    // [m, steps] per trajectory, then partial sums S = δ·U with U[k, j] = 1 for k < j.
    let per_row = delta.reshape([steps, m]).transpose();
    let upper: Vec<f32> = (0..steps)
        .flat_map(|k| (0..n).map(move |j| if k < j { 1.0 } else { 0.0 }))
        .collect();
    let u = Tensor::<B, 2>::from_data(TensorData::new(upper, [steps, n]), &device);
    let s = per_row.matmul(u);
    let diff = s.clone().unsqueeze_dim::<3>(1) - s.unsqueeze_dim::<3>(2); // [m, i, j] = S_j − S_i
    let w: Vec<f32> = weights(balance, steps).iter().map(|&w| w as f32).collect();
    let w = Tensor::<B, 2>::from_data(TensorData::new(w, [n, n]), &device).unsqueeze_dim::<3>(0);
    (diff.powi_scalar(2) * w).sum().div_scalar(m as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    type B = Flex;

    /// δ for m = 2 trajectories of 3 steps, step-major. Trajectory 0: δ = 1, 2, −1;
    /// trajectory 1: δ = 0.5, 0, 3.
    fn deltas() -> Tensor<B, 1> {
        let delta = vec![1.0f32, 0.5, 2.0, 0.0, -1.0, 3.0];
        Tensor::<B, 1>::from_data(TensorData::new(delta, [6]), &Default::default())
    }

    fn loss(balance: Balance) -> f64 {
        balance_loss(deltas(), 2, 3, balance, TailWeight::NONE).into_scalar() as f64
    }

    #[test]
    fn tail_weight_weighs_the_last_transitions_of_every_trajectory() {
        // Last step (δ = −1 and 3) at weight 0.5: (1 + 4 + 0.25 + 0 + 0.5·(1 + 9)) / (2·2.5).
        let tail = TailWeight {
            steps: 1,
            weight: 0.5,
        };
        let got = balance_loss(deltas(), 2, 3, Balance::Detailed, tail).into_scalar() as f64;
        assert!((got - 10.25 / 5.0).abs() < 1e-6, "{got}");
        let none = TailWeight {
            steps: 1,
            weight: 1.0,
        };
        let same = balance_loss(deltas(), 2, 3, Balance::Detailed, none).into_scalar() as f64;
        assert!((same - loss(Balance::Detailed)).abs() < 1e-7);
    }

    #[test]
    fn losses_are_the_sub_trajectory_sums_they_claim() {
        // DB: mean of δ² = (1 + 4 + 1 + 0.25 + 0 + 9) / 6, by the shortcut and by the weights.
        assert!((loss(Balance::Detailed) - 15.25 / 6.0).abs() < 1e-6);
        let weighted = weighted_loss(deltas(), 2, 3, Balance::Detailed).into_scalar() as f64;
        assert!((weighted - 15.25 / 6.0).abs() < 1e-6, "{weighted}");
        // TB: mean over trajectories of (Σδ)² = (2² + 3.5²) / 2.
        assert!((loss(Balance::Trajectory) - (4.0 + 12.25) / 2.0).abs() < 1e-5);
        // SubTB(1): the 6 sub-trajectories of each, equally weighted.
        let subs = |d: [f64; 3]| {
            let mut s = 0.0;
            for i in 0..3 {
                for j in i + 1..=3 {
                    s += d[i..j].iter().sum::<f64>().powi(2) / 6.0;
                }
            }
            s
        };
        let expected = (subs([1.0, 2.0, -1.0]) + subs([0.5, 0.0, 3.0])) / 2.0;
        let got = loss(Balance::SubTrajectory { lambda: 1.0 });
        assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
        // λ → 0 is DB up to normalisation: the mean over the 3 transitions of each trajectory.
        let db_per_trajectory = 15.25 / 3.0 / 2.0;
        let small = loss(Balance::SubTrajectory { lambda: 1e-9 });
        assert!((small - db_per_trajectory).abs() < 1e-5, "{small}");
        // λ → ∞ is TB.
        let large = loss(Balance::SubTrajectory { lambda: 1e9 });
        assert!((large - loss(Balance::Trajectory)).abs() < 1e-4, "{large}");
        // Weights of 50 steps at λ = 10 stay finite.
        assert!(weights(Balance::SubTrajectory { lambda: 10.0 }, 50)
            .iter()
            .all(|w| w.is_finite()));
    }
}
