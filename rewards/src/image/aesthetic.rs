//! The LAION aesthetic predictor (DDPO, DAG, ∇-GFlowNet, PAG): CLIP ViT-L/14's image embedding,
//! L2-normalised, through the linear head of improved-aesthetic-predictor. Differentiable.
//!
//! Gradients always flow through the differentiable path; `preprocess` picks the path scores
//! (rollout rewards, evaluations, `bench score`) take (see [`super::clip_image`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::backend::Flex;
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use bench_core::validate::{Invalid, Validate};
use bench_core::BuildContext;
use bench_models::aesthetic_head::{AestheticHead, HEAD_SOURCE};
use bench_models::Precision;

pub use super::clip_image::Preprocess;
use super::clip_image::{cache_key, ImageTower};
use crate::file_check::FileCheck;
use crate::reward::{DifferentiableReward, Reward};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AestheticParams {
    /// A transformers CLIP folder (`config.json`, `model.safetensors`) of a `CLIPModel` or a
    /// `CLIPVisionModelWithProjection`: openai/clip-vit-large-patch14 for the real predictor.
    pub clip: PathBuf,
    /// The head: `sac+logos+ava1-l14-linearMSE.pth` (or a safetensors copy).
    pub head: PathBuf,
    pub preprocess: Preprocess,
    /// The precision the CLIP tower is held and run in: `F32` (the default), `Bf16` or `F16`
    /// (norms and attention's softmax in f32, the embedding returned in f32; the small head
    /// stays f32, as ddpo-pytorch keeps its scorer), as the frozen SD networks' `dtype`. Left
    /// out of the run id when f32.
    #[serde(skip_serializing_if = "Precision::is_f32")]
    pub dtype: Precision,
}

impl Default for AestheticParams {
    fn default() -> Self {
        Self {
            clip: "clip-vit-large-patch14".into(),
            head: "sac+logos+ava1-l14-linearMSE.pth".into(),
            preprocess: Preprocess::Processor,
            dtype: Precision::F32,
        }
    }
}

impl Validate for AestheticParams {
    fn validate(&self) -> Result<(), Invalid> {
        Ok(())
    }
}

/// The reward: networks on the autodiff backend for gradients, their inner twins for scores.
pub struct Aesthetic<B: AutodiffBackend> {
    tower: Arc<ImageTower<B>>,
    head: Arc<AestheticHead<B>>,
    infer_tower: ImageTower<B::InnerBackend>,
    infer_head: AestheticHead<B::InnerBackend>,
    preprocess: Preprocess,
}

/// The head of `path`, loaded once per process, checked against the tower it reads.
///
/// # Errors
/// A missing or misfit file, named with where to get the real one; a head whose input is not
/// the tower's embedding width.
pub fn load_head<B: AutodiffBackend>(
    path: &Path,
    tower: &ImageTower<B>,
    clip: &Path,
    cx: &BuildContext<'_, B>,
) -> Result<Arc<AestheticHead<B>>, String> {
    let head = cx
        .cache
        .get_or_load(&cache_key::<B>("aesthetic_head", &[path]), || {
            AestheticHead::<B>::load(path, &cx.device).map_err(|e| format!("head: {e}"))
        })?;
    if head.input_width() != tower.projection_dim {
        return Err(format!(
            "head = {} takes embeddings of {}, but clip = {} gives {}",
            path.display(),
            head.input_width(),
            clip.display(),
            tower.projection_dim
        ));
    }
    Ok(head)
}

/// `bench doctor`'s check of a head file (3.7 MB for the real one: read whole).
pub fn check_head(path: &Path) -> FileCheck {
    let outcome = AestheticHead::<Flex>::load(path, &Default::default())
        .map(|head| {
            let widths: Vec<String> = std::iter::once(head.input_width())
                .chain(head.layers.iter().map(|l| l.weight.dims()[1]))
                .map(|w| w.to_string())
                .collect();
            format!("linear head {}", widths.join("→"))
        })
        .map_err(|e| {
            if e.contains(HEAD_SOURCE) {
                e
            } else {
                format!("{e}; get {HEAD_SOURCE}")
            }
        });
    FileCheck {
        what: "head: LAION aesthetic head".into(),
        path: path.to_path_buf(),
        outcome,
    }
}

/// The head's scores of unit image embeddings.
pub fn head_scores<B: Backend>(
    tower: &ImageTower<B>,
    head: &AestheticHead<B>,
    pixels: Tensor<B, 4>,
) -> Tensor<B, 1> {
    head.forward(tower.unit_embeddings(pixels))
}

impl<B: AutodiffBackend> Aesthetic<B> {
    /// Loads the networks once per process (keyed by their files; the tower is shared with
    /// the other rewards on the same CLIP folder).
    ///
    /// # Errors
    /// Missing or misfit files, named with where to get the real ones; a head whose input is
    /// not the tower's embedding size.
    pub fn build(params: &AestheticParams, cx: &BuildContext<'_, B>) -> Result<Self, String> {
        let (clip, head) = (cx.path(&params.clip), cx.path(&params.head));
        let tower = ImageTower::cached(&clip, params.dtype, cx)?;
        let head = load_head(&head, &tower, &clip, cx)?;
        Ok(Self {
            infer_tower: tower.inner(),
            infer_head: head.valid(),
            tower,
            head,
            preprocess: params.preprocess,
        })
    }
}

impl<B: AutodiffBackend> Reward<B> for Aesthetic<B> {
    fn name(&self) -> &str {
        "aesthetic"
    }

    fn score(
        &self,
        samples: Tensor<B::InnerBackend, 4>,
        _prompts: &[String],
    ) -> Tensor<B::InnerBackend, 1> {
        let pixels = self.infer_tower.pixels(samples, self.preprocess);
        head_scores(&self.infer_tower, &self.infer_head, pixels)
    }

    fn differentiable(&self) -> Option<&dyn DifferentiableReward<B>> {
        Some(self)
    }
}

impl<B: AutodiffBackend> DifferentiableReward<B> for Aesthetic<B> {
    fn score_with_graph(&self, samples: Tensor<B, 4>, _prompts: &[String]) -> Tensor<B, 1> {
        let pixels = self.tower.pixels(samples, Preprocess::Differentiable);
        head_scores(&self.tower, &self.head, pixels)
    }
}
