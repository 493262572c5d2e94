//! Mode coverage and the total variation between mode weights.

use serde::{Deserialize, Serialize};

use bench_models::{GaussianMixture, Point};

/// Fraction of `samples` whose most likely component of `modes` is each component.
pub fn mode_fractions(samples: &[Point], modes: &GaussianMixture) -> Vec<f64> {
    let mut counts = vec![0.0; modes.len()];
    for &x in samples {
        counts[modes.most_likely_component(x)] += 1.0;
    }
    counts.iter().map(|c| c / samples.len() as f64).collect()
}

/// How a model's mode weights compare with the target's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModeReport {
    /// Target modes that hold at least `MIN_TARGET_WEIGHT` of the target's mass.
    pub target_modes: usize,
    /// Of those, the ones that get at least `COVERED_FRACTION` of their target weight.
    pub covered: usize,
    /// ½ Σ_k |model_k − target_k|.
    pub total_variation: f64,
}

/// A mode matters when the target puts at least this much mass on it.
pub const MIN_TARGET_WEIGHT: f64 = 0.02;
/// A mode is covered when the model gives it at least this share of its target weight.
pub const COVERED_FRACTION: f64 = 0.25;

impl ModeReport {
    pub fn new(model: &[f64], target: &[f64]) -> Self {
        assert_eq!(model.len(), target.len());
        let relevant: Vec<usize> = (0..target.len())
            .filter(|&k| target[k] >= MIN_TARGET_WEIGHT)
            .collect();
        Self {
            target_modes: relevant.len(),
            covered: relevant
                .iter()
                .filter(|&&k| model[k] >= COVERED_FRACTION * target[k])
                .count(),
            total_variation: 0.5
                * model
                    .iter()
                    .zip(target)
                    .map(|(m, t)| (m - t).abs())
                    .sum::<f64>(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_counts_only_relevant_modes_with_enough_mass() {
        let r = ModeReport::new(&[0.9, 0.1, 0.0, 0.0], &[0.5, 0.3, 0.2, 0.0]);
        assert_eq!(r.target_modes, 3);
        assert_eq!(r.covered, 2);
        assert!((r.total_variation - 0.4).abs() < 1e-12);
    }
}
