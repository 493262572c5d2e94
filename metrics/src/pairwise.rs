//! Mean pairwise distances of feature vectors within each prompt's samples, averaged over
//! prompts: the shape of the image diversity metrics (`image_diversity` on Inception features,
//! `dreamsim` on DreamSim embeddings).

use serde::{Deserialize, Serialize};

/// How two feature vectors' distance is measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeatureDistance {
    /// `1 − cos(a, b)`.
    #[default]
    Cosine,
    /// `‖a − b‖`.
    Euclidean,
}

impl FeatureDistance {
    /// The mean distance over all unordered pairs of `rows` (each of width `d`), in f64.
    pub fn mean_pairwise(self, rows: &[f32], d: usize) -> f64 {
        let rows: Vec<Vec<f64>> = rows
            .chunks_exact(d)
            .map(|r| r.iter().map(|&v| f64::from(v)).collect())
            .collect();
        let norms: Vec<f64> = rows
            .iter()
            // Clamped as torch's `F.normalize`: a zero row is at cosine distance 1 from
            // every row, not NaN.
            .map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12))
            .collect();
        let n = rows.len();
        if n < 2 {
            return f64::NAN;
        }
        let mut total = 0.0;
        for i in 0..n {
            for j in i + 1..n {
                total += match self {
                    Self::Cosine => {
                        let dot: f64 = rows[i].iter().zip(&rows[j]).map(|(a, b)| a * b).sum();
                        1.0 - dot / (norms[i] * norms[j])
                    }
                    Self::Euclidean => rows[i]
                        .iter()
                        .zip(&rows[j])
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum::<f64>()
                        .sqrt(),
                };
            }
        }
        total / (n * (n - 1) / 2) as f64
    }
}

/// Feature rows gathered prompt by prompt, reduced to each prompt's mean pairwise distance.
pub struct PairwiseByPrompt {
    distance: FeatureDistance,
    width: usize,
    current: Vec<f32>,
    per_prompt: Vec<f64>,
}

impl PairwiseByPrompt {
    pub fn new(distance: FeatureDistance) -> Self {
        Self {
            distance,
            width: 1,
            current: vec![],
            per_prompt: vec![],
        }
    }

    /// Rows of `width` values of the current prompt.
    pub fn push(&mut self, rows: &[f32], width: usize) {
        self.width = width.max(1);
        self.current.extend_from_slice(rows);
    }

    /// The current prompt's rows are complete.
    pub fn end_prompt(&mut self) {
        let rows = std::mem::take(&mut self.current);
        self.per_prompt
            .push(self.distance.mean_pairwise(&rows, self.width));
    }

    /// The mean over prompts; ready for the next evaluation.
    pub fn finish(&mut self) -> f64 {
        let mean = bench_core::stats::mean(&self.per_prompt);
        self.per_prompt.clear();
        mean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_distances_by_hand() {
        // (1, 0), (0, 1), (1, 1): cosine distances 1, 1 − 1/√2, 1 − 1/√2; Euclidean √2, 1, 1.
        let rows = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let cos = FeatureDistance::Cosine.mean_pairwise(&rows, 2);
        let want = (1.0 + 2.0 * (1.0 - 0.5f64.sqrt())) / 3.0;
        assert!((cos - want).abs() < 1e-15, "{cos} vs {want}");
        let l2 = FeatureDistance::Euclidean.mean_pairwise(&rows, 2);
        assert!((l2 - (2f64.sqrt() + 2.0) / 3.0).abs() < 1e-15, "{l2}");
        assert!(FeatureDistance::Cosine
            .mean_pairwise(&rows[..2], 2)
            .is_nan());
        // A zero row is at cosine distance 1 from the others (torch's F.normalize), not NaN.
        let with_zero = [0.0, 0.0, 1.0, 0.0, 0.0, 1.0];
        let cos = FeatureDistance::Cosine.mean_pairwise(&with_zero, 2);
        assert!((cos - 1.0).abs() < 1e-15, "{cos}");
    }
}
