//! HPSv2 / v2.1 (∇-GFlowNet's reward; differentiable): OpenCLIP ViT-H/14 finetuned on human
//! preferences, scored as the cosine of the image's and the prompt's normalised features, no
//! logit scale (HPSv2's `img_score.py`).
//!
//! Preprocessing, as HPSv2's `preprocess_val` and ∇-GFlowNet's reward both do it on tensors:
//! `ResizeMaxSize(224)` — torchvision's bicubic resize with antialias (its default on tensors
//! since 0.17, Pillow's kernel in floating point) of the longest side to 224, the other rounded
//! half to even as Python rounds, then zero padding to the square (left/top get the smaller
//! half) — and OpenAI's mean and std. One path serves scores and gradients; images decoded from
//! files are 8-bit already, as HPSv2's `ToTensor` makes them.
//!
//! The text side is open_clip's tokenizer for ViT-H-14, CLIP's BPE (built into bench), 77
//! tokens, the end-of-text token kept when a prompt is cut.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::backend::Flex;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use bench_core::validate::{Invalid, Validate};
use bench_core::BuildContext;
use bench_models::clip::open_clip::{text_keys, vision_keys};
use bench_models::clip::{
    clip_normalise, load_open_clip, ClipTokenizer, OpenClipConfig, CONTEXT_LENGTH,
};
use bench_models::resize::{resize, Kernel};
use bench_models::weights::{check_mapped, read_tensors, LoadError};
use bench_models::{cast_module, Precision};

use super::clip_image::{cache_key, ImageTower};
use super::clip_score::cosines;
use super::clip_text::TextTower;
use crate::file_check::FileCheck;
use crate::reward::{DifferentiableReward, Reward};

/// Where users get the checkpoints.
pub const GET_HPS: &str = "`HPS_v2.1_compressed.pt` (or `HPS_v2_compressed.pt`) from \
     https://huggingface.co/xswu/HPSv2, e.g. `huggingface-cli download xswu/HPSv2 \
     HPS_v2.1_compressed.pt --local-dir .`";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HpsParams {
    /// The HPSv2 checkpoint (`HPS_v2.1_compressed.pt`, v2.1 as ∇-GFlowNet uses; or v2.0's).
    pub checkpoint: PathBuf,
    /// An open_clip model config (`model_configs/ViT-H-14.json`'s format) for another size;
    /// none: ViT-H/14.
    pub config: Option<PathBuf>,
    /// The precision the towers are held and run in: `F32` (the default), `Bf16` or `F16`
    /// (norms and attention's softmax in f32, embeddings and scores returned in f32), as the
    /// frozen SD networks' `dtype`. Left out of the run id when f32.
    #[serde(skip_serializing_if = "Precision::is_f32")]
    pub dtype: Precision,
}

impl Default for HpsParams {
    fn default() -> Self {
        Self {
            checkpoint: "HPS_v2.1_compressed.pt".into(),
            config: None,
            dtype: Precision::F32,
        }
    }
}

impl Validate for HpsParams {
    fn validate(&self) -> Result<(), Invalid> {
        Ok(())
    }
}

fn config(params: &HpsParams) -> Result<OpenClipConfig, String> {
    match &params.config {
        None => Ok(OpenClipConfig::vit_h14()),
        Some(path) => OpenClipConfig::from_file(path).map_err(|e| format!("config: {e}")),
    }
}

fn checkpoint_error(params: &HpsParams, e: &LoadError) -> String {
    format!(
        "checkpoint = {}: {}; get {GET_HPS}",
        params.checkpoint.display(),
        e.without_sd_source()
    )
}

/// HPSv2's pixels of images `[N, 3, H, W]` in [0, 1]: the longest side to `size`, zero
/// padding to the square, OpenAI's mean and std.
pub fn hps_pixels<B: Backend>(images: Tensor<B, 4>, size: usize) -> Tensor<B, 4> {
    let [n, c, h, w] = images.dims();
    let scale = size as f64 / h.max(w) as f64;
    let images = if h.max(w) == size {
        images
    } else {
        let side = |d: usize| ((d as f64 * scale).round_ties_even() as usize).max(1);
        let (nh, nw) = (side(h), side(w));
        let resized = resize(images, Kernel::PilBicubic, [nh, nw]);
        let (top, left) = ((size - nh) / 2, (size - nw) / 2);
        Tensor::zeros([n, c, size, size], &resized.device())
            .slice_assign([0..n, 0..c, top..top + nh, left..left + nw], resized)
    };
    clip_normalise(images)
}

/// The reward's towers on one backend.
struct HpsTowers<B: Backend> {
    image: ImageTower<B>,
    text: TextTower<B>,
}

impl<B: Backend> HpsTowers<B> {
    fn load(params: &HpsParams, device: &B::Device) -> Result<Self, String> {
        let config = config(params)?;
        let (vision, text) = load_open_clip::<B>(&config, &params.checkpoint, device)
            .map_err(|e| checkpoint_error(params, &e))?;
        let vision_config = config.vision();
        let text_config = config.text();
        Ok(Self {
            image: ImageTower {
                model: cast_module(vision, params.dtype),
                image_size: vision_config.image_size,
                projection_dim: config.embed_dim,
            },
            text: TextTower {
                model: cast_module(text, params.dtype),
                tokenizer: Arc::new(ClipTokenizer::sd_v1()),
                length: CONTEXT_LENGTH.min(text_config.max_position_embeddings),
                projection_dim: config.embed_dim,
            },
        })
    }

    fn scores(&self, images: Tensor<B, 4>, prompts: &[String]) -> Tensor<B, 1> {
        let pixels = hps_pixels(images, self.image.image_size);
        cosines(&self.image, &self.text, pixels, prompts)
    }
}

/// The reward: towers on the autodiff backend for gradients, their inner twins for scores.
pub struct Hps<B: AutodiffBackend> {
    nets: Arc<HpsTowers<B>>,
    infer: HpsTowers<B::InnerBackend>,
}

impl<B: AutodiffBackend> Hps<B> {
    /// Loads both towers once per process.
    ///
    /// # Errors
    /// A missing or misfit checkpoint or config, named with where to get the real one.
    pub fn build(params: &HpsParams, cx: &BuildContext<'_, B>) -> Result<Self, String> {
        let params = HpsParams {
            checkpoint: cx.path(&params.checkpoint),
            config: params.config.as_deref().map(|c| cx.path(c)),
            dtype: params.dtype,
        };
        let mut files: Vec<&Path> = vec![&params.checkpoint];
        files.extend(params.config.as_deref());
        let what = format!("hpsv2_{}", params.dtype.name());
        let nets = cx.cache.get_or_load(&cache_key::<B>(&what, &files), || {
            HpsTowers::<B>::load(&params, &cx.device)
        })?;
        let infer = HpsTowers {
            image: nets.image.inner(),
            text: nets.text.inner(),
        };
        Ok(Self { nets, infer })
    }
}

impl<B: AutodiffBackend> Reward<B> for Hps<B> {
    fn name(&self) -> &str {
        "hpsv2"
    }

    fn score(
        &self,
        samples: Tensor<B::InnerBackend, 4>,
        prompts: &[String],
    ) -> Tensor<B::InnerBackend, 1> {
        self.infer.scores(samples, prompts)
    }

    fn differentiable(&self) -> Option<&dyn DifferentiableReward<B>> {
        Some(self)
    }
}

impl<B: AutodiffBackend> DifferentiableReward<B> for Hps<B> {
    fn score_with_graph(&self, samples: Tensor<B, 4>, prompts: &[String]) -> Tensor<B, 1> {
        self.nets.scores(samples, prompts)
    }
}

/// `bench doctor`'s check of the checkpoint against both towers (the state dict's tensor
/// list; no tensor data is read).
pub fn check_checkpoint(params: &HpsParams) -> FileCheck {
    let what = "checkpoint: HPSv2 (OpenCLIP)";
    let path = params.checkpoint.clone();
    let config = match config(params) {
        Ok(c) => c,
        Err(e) => {
            return FileCheck {
                what: what.into(),
                path,
                outcome: Err(e),
            }
        }
    };
    let checked = read_tensors(&params.checkpoint).map(|(header, _)| {
        let device = Default::default();
        let vision = config.vision().init::<Flex>(&device);
        let text = config
            .text()
            .init_with_projection::<Flex>(config.embed_dim, &device);
        let file = params.checkpoint.as_path();
        let mut report = check_mapped(&vision, file, &header, "", &vision_keys);
        let text_report = check_mapped(&text, file, &header, "", &text_keys);
        report.parameters += text_report.parameters;
        report.problems.extend(text_report.problems);
        let v = &config.vision_cfg;
        let described = format!(
            "OpenCLIP ViT: {} layers of width {}, {} px in patches of {}; text: {} layers of \
             width {}; embeddings of {}",
            v.layers,
            v.width,
            v.image_size,
            v.patch_size,
            config.text_cfg.layers,
            config.text_cfg.width,
            config.embed_dim
        );
        (described, report)
    });
    FileCheck::from_report(what, path, checked, GET_HPS)
}
