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
use crate::pairwise::{FeatureDistance, PairwiseByPrompt};
use crate::registry::MetricPlugin;
use crate::schedule::When;

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
    pairs: PairwiseByPrompt,
}

impl MetricPlugin for ImageDiversityMetric {
    type Params = ImageDiversityParams;
    const READS: &'static [SampleKind] = &[SampleKind::Images];

    fn build<B: Backend>(
        params: &ImageDiversityParams,
        setup: &MetricSetup<'_, B>,
    ) -> Result<Box<dyn Metric<B>>, String> {
        // One prompt's rows, in f32 and in f64.
        validate::fits_in_memory(
            &format!(
                "image_diversity with images_per_prompt = {}",
                params.images_per_prompt
            ),
            params.images_per_prompt as f64 * FEATURES as f64 * 12.0,
        )?;
        Ok(Box::new(ImageDiversity {
            network: InceptionFeatures::load(&params.weights, params.resize, &setup.build)?,
            params: params.clone(),
            pairs: PairwiseByPrompt::new(params.distance),
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
        self.pairs.push(&features, FEATURES);
        Ok(())
    }

    fn end_prompt(&mut self, _prompt: usize, _cx: &mut EvalContext<'_>) -> Result<(), String> {
        self.pairs.end_prompt();
        Ok(())
    }

    fn finish(&mut self, _cx: &mut EvalContext<'_>) -> Result<Scalars, String> {
        Ok(vec![("image_diversity".into(), self.pairs.finish())])
    }
}
