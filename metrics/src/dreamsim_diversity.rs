//! `dreamsim` (∇-GFlowNet, §5 and Table 1): image diversity as DreamSim sees it — the mean
//! pairwise DreamSim distance (`1 − cos` of the mean-centred, normalised embeddings) within each
//! prompt's images (64 by default, the paper's batch), averaged over prompts; higher = more
//! diverse.
//!
//! ∇-GFlowNet, after Domingo-Enrich et al., speaks of "the variance of latent features" of a
//! batch: for unit embeddings `eᵢ` the two are the same measure up to a factor, since
//! `(1/n) Σ ‖eᵢ − ē‖² = 1 − ‖ē‖² = ((n − 1)/n) · mean_{i≠j} (1 − eᵢ·eⱼ)`.

use std::path::PathBuf;
use std::sync::Arc;

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use bench_core::validate::{self, Invalid, Validate};
use bench_core::SampleKind;
use bench_models::dreamsim::{DreamSim, DreamSimVariant, IMAGE_SIZE};
use bench_models::resize::{pil_resize, resize, Kernel};
use bench_rewards::image::clip_image::cache_key;

use crate::metric::{EvalContext, EvalPoint, Metric, MetricSetup, Needs, SampleBatch, Scalars};
use crate::pairwise::{FeatureDistance, PairwiseByPrompt};
use crate::registry::MetricPlugin;
use crate::schedule::When;

/// How images reach DreamSim's 224².
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DreamSimResize {
    /// The package's `preprocess`: 8-bit levels (rounded), Pillow's bicubic to 224² (exact
    /// levels), as for images saved and read back.
    #[default]
    Pil,
    /// torch's `interpolate` bicubic in floating point, no antialiasing (for tensors fed
    /// directly).
    Torch,
}

impl DreamSimResize {
    fn apply<B: Backend>(self, images: Tensor<B, 4>) -> Tensor<B, 4> {
        let [_, _, h, w] = images.dims();
        if [h, w] == [IMAGE_SIZE, IMAGE_SIZE] && self == Self::Torch {
            return images;
        }
        match self {
            Self::Pil => {
                let levels = (images * 255.0).round().clamp(0.0, 255.0);
                pil_resize(levels, [IMAGE_SIZE, IMAGE_SIZE]) / 255.0
            }
            Self::Torch => resize(images, Kernel::TorchBicubic, [IMAGE_SIZE, IMAGE_SIZE]),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DreamSimParams {
    /// The `dreamsim` package's cache folder (`dreamsim(cache_dir=...)`).
    pub model: PathBuf,
    pub variant: DreamSimVariant,
    /// Images of each prompt compared pairwise (∇-GFlowNet: 64).
    pub images_per_prompt: usize,
    pub resize: DreamSimResize,
    pub when: When,
}

impl Default for DreamSimParams {
    fn default() -> Self {
        Self {
            model: "models".into(),
            variant: DreamSimVariant::Ensemble,
            images_per_prompt: 64,
            resize: DreamSimResize::Pil,
            when: When::default(),
        }
    }
}

impl Validate for DreamSimParams {
    fn validate(&self) -> Result<(), Invalid> {
        validate::at_least("images_per_prompt", self.images_per_prompt, 2)
    }
}

/// The plugin (its metric, [`DreamSimDiversity`], lives on the evaluation's backend).
pub struct DreamSimMetric;

pub struct DreamSimDiversity<B: Backend> {
    model: Arc<DreamSim<B>>,
    params: DreamSimParams,
    pairs: PairwiseByPrompt,
}

impl MetricPlugin for DreamSimMetric {
    type Params = DreamSimParams;
    const READS: &'static [SampleKind] = &[SampleKind::Images];

    fn build<B: Backend>(
        params: &DreamSimParams,
        setup: &MetricSetup<'_, B>,
    ) -> Result<Box<dyn Metric<B>>, String> {
        // One prompt's embeddings (at most 1792 wide), in f32 and in f64.
        validate::fits_in_memory(
            &format!(
                "dreamsim with images_per_prompt = {}",
                params.images_per_prompt
            ),
            params.images_per_prompt as f64 * 1792.0 * 12.0,
        )?;
        let cx = &setup.build;
        let folder = cx.path(&params.model);
        let key = cache_key::<B>(&format!("dreamsim:{:?}", params.variant), &[&folder]);
        let model = cx.cache.get_or_load(&key, || {
            DreamSim::<B>::load(&folder, params.variant, &cx.device)
                .map_err(|e| format!("model = {}: {e}", folder.display()))
        })?;
        Ok(Box::new(DreamSimDiversity {
            model,
            params: params.clone(),
            pairs: PairwiseByPrompt::new(FeatureDistance::Cosine),
        }))
    }
}

impl<B: Backend> Metric<B> for DreamSimDiversity<B> {
    fn needs(&mut self, at: &EvalPoint<'_>) -> Result<Option<Needs>, String> {
        Ok(self.params.when.includes(at).then_some(Needs {
            samples_per_prompt: Some(self.params.images_per_prompt),
            base: false,
        }))
    }

    fn update(
        &mut self,
        batch: &SampleBatch<'_, B>,
        _cx: &mut EvalContext<'_>,
    ) -> Result<(), String> {
        let channels = batch.samples.dims()[1];
        if channels != 3 {
            return Err(format!(
                "DreamSim needs RGB images, got {channels} channels"
            ));
        }
        let embed = self
            .model
            .embed(self.params.resize.apply(batch.samples.clone()));
        let width = embed.dims()[1];
        let values = embed
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .map_err(|e| format!("{e:?}"))?;
        self.pairs.push(&values, width);
        Ok(())
    }

    fn end_prompt(&mut self, _prompt: usize, _cx: &mut EvalContext<'_>) -> Result<(), String> {
        self.pairs.end_prompt();
        Ok(())
    }

    fn finish(&mut self, _cx: &mut EvalContext<'_>) -> Result<Scalars, String> {
        Ok(vec![("dreamsim_diversity".into(), self.pairs.finish())])
    }
}
