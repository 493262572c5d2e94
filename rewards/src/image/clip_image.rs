//! CLIP's image side as the image rewards use it: the vision tower, loaded once per process and
//! shared by every reward on the same folder (`aesthetic` and `clip_score` on one ViT-L/14 hold
//! one copy), with the two preprocessing paths of the papers' code ([`super::preprocess`]).

use std::path::Path;
use std::sync::Arc;

use burn::backend::Flex;
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;

use bench_core::BuildContext;
use bench_models::clip::{ClipVisionConfig, ClipVisionModel};
use bench_models::weights::LoadError;
use bench_models::{cast_module, Precision};

pub use super::preprocess::Preprocess;
use super::preprocess::{differentiable_pixels, processor_pixels};
use crate::file_check::FileCheck;

/// Where users get the real tower.
pub const GET_CLIP_L14: &str = "a transformers CLIP ViT-L/14 folder, e.g. `huggingface-cli \
     download openai/clip-vit-large-patch14 config.json model.safetensors vocab.json merges.txt \
     --local-dir clip-vit-large-patch14`";

/// A CLIP folder that failed to load, with where to get the real one.
pub fn clip_error(clip: &Path, e: &LoadError) -> String {
    format!(
        "clip = {}: {}; get {GET_CLIP_L14}",
        clip.display(),
        e.without_sd_source()
    )
}

/// The network cache's key for `what` loaded from `files` on backend `B` (paths made
/// canonical, so two spellings of one file share the network).
pub fn cache_key<B: Backend>(what: &str, files: &[&Path]) -> String {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let files: Vec<String> = files
        .iter()
        .map(|p| canonical(p).display().to_string())
        .collect();
    format!("{what}:{}:{}", files.join(":"), std::any::type_name::<B>())
}

/// The vision tower with its projection and input side.
pub struct ImageTower<B: Backend> {
    pub model: ClipVisionModel<B>,
    /// The tower's input side.
    pub image_size: usize,
    /// The embedding width.
    pub projection_dim: usize,
}

impl<B: Backend> ImageTower<B> {
    /// # Errors
    /// Missing or misfit files, named with where to get the real ones.
    pub fn load(clip: &Path, precision: Precision, device: &B::Device) -> Result<Self, String> {
        let config = ClipVisionConfig::from_file(&clip.join("config.json"))
            .map_err(|e| clip_error(clip, &e))?;
        let model = ClipVisionModel::from_folder(clip, device).map_err(|e| clip_error(clip, &e))?;
        Ok(Self {
            model: cast_module(model, precision),
            image_size: config.image_size,
            projection_dim: config.projection_dim,
        })
    }

    /// Images `[N, 3, H, W]` in [0, 1] as the tower's input, by `preprocess`.
    pub fn pixels(&self, images: Tensor<B, 4>, preprocess: Preprocess) -> Tensor<B, 4> {
        match preprocess {
            Preprocess::Processor => processor_pixels(images, self.image_size),
            Preprocess::Differentiable => differentiable_pixels(images, self.image_size),
        }
    }

    /// L2-normalised image embeddings `[N, projection_dim]` of preprocessed pixels.
    pub fn unit_embeddings(&self, pixels: Tensor<B, 4>) -> Tensor<B, 2> {
        unit_rows(self.model.forward(pixels))
    }
}

impl<B: AutodiffBackend> ImageTower<B> {
    /// The same tower on the inner backend, for scoring without a graph.
    pub fn inner(&self) -> ImageTower<B::InnerBackend> {
        ImageTower {
            model: self.model.valid(),
            image_size: self.image_size,
            projection_dim: self.projection_dim,
        }
    }

    /// The tower of `clip` in `precision`, loaded once per process (per precision).
    ///
    /// # Errors
    /// As [`ImageTower::load`].
    pub fn cached(
        clip: &Path,
        precision: Precision,
        cx: &BuildContext<'_, B>,
    ) -> Result<Arc<Self>, String> {
        let what = format!("clip_vision_{}", precision.name());
        cx.cache.get_or_load(&cache_key::<B>(&what, &[clip]), || {
            Self::load(clip, precision, &cx.device)
        })
    }
}

/// `bench doctor`'s check of the vision tower of a CLIP folder (headers only).
pub fn check_vision(clip: &Path) -> FileCheck {
    let checked = ClipVisionModel::<Flex>::check_folder(clip, &Default::default()).map(|(c, r)| {
        let described = format!(
            "ViT: {} layers of width {}, {} px in patches of {}, embeddings of {}",
            c.num_hidden_layers, c.hidden_size, c.image_size, c.patch_size, c.projection_dim
        );
        (described, r)
    });
    FileCheck::from_report(
        "clip: CLIP vision tower",
        clip.to_path_buf(),
        checked,
        GET_CLIP_L14,
    )
}

/// Rows scaled to unit L2 norm; an all-zero row stays zero with a finite gradient (its norm
/// clamped to 1e-12, as torch's `F.normalize` does, before the square root) rather than NaN.
pub fn unit_rows<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).clamp_min(1e-24).sqrt();
    x / norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::TensorData;

    #[test]
    fn unit_rows_scale_to_norm_one_and_keep_zero_rows_zero() {
        type AB = Autodiff<Flex>;
        let x = Tensor::<AB, 2>::from_data(
            TensorData::new(vec![3.0f32, 4.0, 0.0, 0.0], [2, 2]),
            &Default::default(),
        )
        .require_grad();
        let y = unit_rows(x.clone());
        assert_eq!(
            y.clone().into_data().to_vec::<f32>().unwrap(),
            vec![0.6, 0.8, 0.0, 0.0]
        );
        let grads = y.sum().backward();
        let g = x.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
        assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
    }
}
