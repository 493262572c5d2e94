//! PPO's clipped surrogate (Schulman et al., 2017), shared by DDPO, DPOK and DAG-KL.

use burn::tensor::{backend::Backend, Tensor};

/// mean(max(−A·ρ, −A·clip(ρ, 1 − ε, 1 + ε))) with ρ = exp(`log_ratio`).
pub fn clipped_surrogate<B: Backend>(
    log_ratio: Tensor<B, 1>,
    advantages: Tensor<B, 1>,
    clip_range: f64,
) -> Tensor<B, 1> {
    let ratio = log_ratio.exp();
    let unclipped = -advantages.clone() * ratio.clone();
    let clipped = -advantages * ratio.clamp(1.0 - clip_range, 1.0 + clip_range);
    unclipped.max_pair(clipped).mean()
}

/// The fraction of ratios outside 1 ± ε (a diagnostic).
pub fn clip_fraction<B: Backend>(log_ratio: Tensor<B, 1>, clip_range: f64) -> Tensor<B, 1> {
    (log_ratio.exp() - 1.0)
        .abs()
        .greater_elem(clip_range)
        .float()
        .mean()
}
