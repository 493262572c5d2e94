//! `image_diversity` (PAG, Table 6): the mean pairwise distance between the Inception pool3
//! features of each prompt's images, averaged over prompts.
//!
//! The images enter in [0, 1], as the paper describes (pytorch-fid's network maps them to
//! [−1, 1]); PAG's released code feeds 0–255 pixels to a network that expects [0, 1], which
//! saturates the first layers — `bench` does not copy that defect, so its values are not
//! comparable with the released code's, only with the paper's intent.
//!
//! The paper does not name the distance. Its Table 6 values (0.16–0.20) are on the scale of
//! cosine distances between pool3 features (all non-negative, so cosines near 1), while
//! Euclidean distances between them are tens of units, and PAG's prompt diversity is a cosine
//! distance too: cosine is the default, Euclidean a setting.

use std::path::PathBuf;

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use bench_core::validate::{self, Invalid, Validate};
use bench_core::SampleKind;
use bench_models::inception::FidResize;

use crate::inception_features::{default_weights, InceptionFeatures, FEATURES};
use crate::metric::{EvalContext, EvalPoint, Metric, MetricSetup, Needs, SampleBatch, Scalars};
use crate::registry::MetricPlugin;
use crate::schedule::When;

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
            .map(|r| r.iter().map(|v| v * v).sum::<f64>().sqrt())
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageDiversityParams {
    /// Images of each prompt compared pairwise (PAG: 16 prompts × 3 images per input prompt).
    pub images_per_prompt: usize,
    pub distance: FeatureDistance,
    /// pytorch-fid's Inception weights.
    pub weights: PathBuf,
    /// pytorch-fid's resize to 299² (default) or clean-fid's.
    pub resize: FidResize,
    pub when: When,
}

impl Default for ImageDiversityParams {
    fn default() -> Self {
        Self {
            images_per_prompt: 48,
            distance: FeatureDistance::Cosine,
            weights: default_weights(),
            resize: FidResize::PytorchFid,
            when: When::default(),
        }
    }
}

impl Validate for ImageDiversityParams {
    fn validate(&self) -> Result<(), Invalid> {
        validate::at_least("images_per_prompt", self.images_per_prompt, 2)
    }
}

/// The plugin (its metric, [`ImageDiversity`], lives on the evaluation's backend).
pub struct ImageDiversityMetric;

pub struct ImageDiversity<B: Backend> {
    network: InceptionFeatures<B>,
    params: ImageDiversityParams,
    current: Vec<f32>,
    per_prompt: Vec<f64>,
}

impl MetricPlugin for ImageDiversityMetric {
    type Params = ImageDiversityParams;
    const READS: &'static [SampleKind] = &[SampleKind::Images];

    fn build<B: Backend>(
        params: &ImageDiversityParams,
        setup: &MetricSetup<'_, B>,
    ) -> Result<Box<dyn Metric<B>>, String> {
        Ok(Box::new(ImageDiversity {
            network: InceptionFeatures::load(&params.weights, params.resize, &setup.build)?,
            params: params.clone(),
            current: vec![],
            per_prompt: vec![],
        }))
    }
}

impl<B: Backend> Metric<B> for ImageDiversity<B> {
    fn needs(&mut self, at: &EvalPoint<'_>) -> Result<Option<Needs>, String> {
        Ok(self.params.when.includes(at).then_some(Needs {
            samples_per_prompt: Some(self.params.images_per_prompt),
            base: false,
        }))
    }

    fn update(
        &mut self,
        batch: &SampleBatch<'_, B>,
        cx: &mut EvalContext<'_>,
    ) -> Result<(), String> {
        let features = self.network.of_batch(batch, cx, false)?;
        self.current.extend_from_slice(&features);
        Ok(())
    }

    fn end_prompt(&mut self, _prompt: usize, _cx: &mut EvalContext<'_>) -> Result<(), String> {
        let rows = std::mem::take(&mut self.current);
        self.per_prompt
            .push(self.params.distance.mean_pairwise(&rows, FEATURES));
        Ok(())
    }

    fn finish(&mut self, _cx: &mut EvalContext<'_>) -> Result<Scalars, String> {
        let d = bench_core::stats::mean(&self.per_prompt);
        self.per_prompt.clear();
        Ok(vec![("image_diversity".into(), d)])
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
    }
}
