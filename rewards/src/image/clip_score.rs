//! CLIP score: the cosine of an image's and its prompt's CLIP embeddings (ViT-L/14 for PAG's
//! relevance term and as a general metric). Differentiable with respect to the image.
//!
//! The raw cosine, not torchmetrics' `100·max(cos, 0)`: PAG's relevance thresholds the cosine
//! itself. The image side takes the same two preprocessing paths as `aesthetic` and shares its
//! tower when both name the same folder.

use std::path::PathBuf;
use std::sync::Arc;

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use bench_core::validate::{Invalid, Validate};
use bench_core::BuildContext;

use super::clip_image::{ImageTower, Preprocess};
use super::clip_text::TextTower;
use crate::reward::{DifferentiableReward, Reward};
use bench_models::Precision;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClipScoreParams {
    /// A transformers CLIP folder holding both towers (a `CLIPModel`'s `config.json` and
    /// `model.safetensors`; its `vocab.json` and `merges.txt`, else CLIP's own BPE):
    /// openai/clip-vit-large-patch14.
    pub clip: PathBuf,
    pub preprocess: Preprocess,
    /// The precision the towers are held and run in: `F32` (the default), `Bf16` or `F16`
    /// (norms and attention's softmax in f32, embeddings and scores returned in f32), as the
    /// frozen SD networks' `dtype`. Left out of the run id when f32.
    #[serde(skip_serializing_if = "Precision::is_f32")]
    pub dtype: Precision,
}

impl Default for ClipScoreParams {
    fn default() -> Self {
        Self {
            clip: "clip-vit-large-patch14".into(),
            preprocess: Preprocess::Processor,
            dtype: Precision::F32,
        }
    }
}

impl Validate for ClipScoreParams {
    fn validate(&self) -> Result<(), Invalid> {
        Ok(())
    }
}

/// Cosines `[N]` of preprocessed pixels `[N, 3, S, S]` and their prompts; the gradient, where
/// there is one, flows to the pixels only (the text side is constant).
pub fn cosines<B: Backend>(
    image: &ImageTower<B>,
    text: &TextTower<B>,
    pixels: Tensor<B, 4>,
    prompts: &[String],
) -> Tensor<B, 1> {
    let device = pixels.device();
    let images = image.unit_embeddings(pixels);
    let texts = text.unit_embeddings(prompts, &device).detach();
    (images * texts).sum_dim(1).squeeze_dim(1)
}

/// The reward: towers on the autodiff backend for gradients, their inner twins for scores.
pub struct ClipScore<B: AutodiffBackend> {
    image: Arc<ImageTower<B>>,
    text: Arc<TextTower<B>>,
    infer_image: ImageTower<B::InnerBackend>,
    infer_text: TextTower<B::InnerBackend>,
    preprocess: Preprocess,
}

impl<B: AutodiffBackend> ClipScore<B> {
    /// Loads both towers once per process.
    ///
    /// # Errors
    /// Missing or misfit files, named with where to get the real ones; towers whose
    /// projections differ in width.
    pub fn build(params: &ClipScoreParams, cx: &BuildContext<'_, B>) -> Result<Self, String> {
        let clip = cx.path(&params.clip);
        let image = ImageTower::cached(&clip, params.dtype, cx)?;
        let text = TextTower::cached(&clip, params.dtype, cx)?;
        if image.projection_dim != text.projection_dim {
            return Err(format!(
                "clip = {}: the image projection is {} wide but the text projection {}",
                params.clip.display(),
                image.projection_dim,
                text.projection_dim
            ));
        }
        Ok(Self {
            infer_image: image.inner(),
            infer_text: text.inner(),
            image,
            text,
            preprocess: params.preprocess,
        })
    }
}

impl<B: AutodiffBackend> Reward<B> for ClipScore<B> {
    fn name(&self) -> &str {
        "clip_score"
    }

    fn score(
        &self,
        samples: Tensor<B::InnerBackend, 4>,
        prompts: &[String],
    ) -> Tensor<B::InnerBackend, 1> {
        let pixels = self.infer_image.pixels(samples, self.preprocess);
        cosines(&self.infer_image, &self.infer_text, pixels, prompts)
    }

    fn differentiable(&self) -> Option<&dyn DifferentiableReward<B>> {
        Some(self)
    }
}

impl<B: AutodiffBackend> DifferentiableReward<B> for ClipScore<B> {
    fn score_with_graph(&self, samples: Tensor<B, 4>, prompts: &[String]) -> Tensor<B, 1> {
        let pixels = self.image.pixels(samples, Preprocess::Differentiable);
        cosines(&self.image, &self.text, pixels, prompts)
    }
}
