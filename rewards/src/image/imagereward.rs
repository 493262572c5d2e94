//! ImageReward (∇-GFlowNet's reward; differentiable): BLIP's ViT-L/16 and cross-attending
//! BERT-base with an MLP head (see [`bench_models::image_reward`]), on the prompt and the image.
//!
//! Two preprocessing paths, as for the aesthetic reward; gradients always take the second:
//! - `Processor` — the package's `ImageReward.score` on a PIL image: 8 bits, Pillow's bicubic
//!   resize of the shortest side to 224, torchvision's centre crop, OpenAI's mean and std;
//! - `Differentiable` — ∇-GFlowNet's `score_gard` path: torchvision's antialiased bicubic of the
//!   float tensor (no 8-bit rounding), the same crop, mean and std.
//!
//! The prompt is cut to `max_length` tokens, `[CLS]` and `[SEP]` included: 35 as `score`
//! does, 512 as ∇-GFlowNet's gradient path does (padding never changes the score). The
//! tokenizer is bert-base-uncased's (built in) with BLIP's `[DEC]` and `[ENC]` appended;
//! `[ENC]` is not put first, as `score` does not.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::backend::Flex;
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use bench_core::validate::{Invalid, Validate};
use bench_core::BuildContext;
use bench_models::bert::BertTokenizer;
use bench_models::clip::clip_normalise;
use bench_models::image_reward::{self, ImageRewardConfig, ImageRewardModel};
use bench_models::weights::LoadError;
use bench_models::Precision;

use super::clip_image::cache_key;
pub use super::preprocess::Preprocess;
use super::preprocess::{pil_shortest_side_crop, tensor_shortest_side_crop, CropOffset};
use crate::file_check::FileCheck;
use crate::reward::{DifferentiableReward, Reward};

/// Where users get the checkpoint.
pub const GET_IMAGE_REWARD: &str = "`ImageReward.pt` (and its `med_config.json`) from \
     https://huggingface.co/THUDM/ImageReward, e.g. `huggingface-cli download THUDM/ImageReward \
     ImageReward.pt med_config.json --local-dir .`";

/// BLIP's tokens after bert-base-uncased's vocabulary (`init_tokenizer`).
const BLIP_TOKENS: [&str; 2] = ["[DEC]", "[ENC]"];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageRewardParams {
    /// `ImageReward.pt` (BLIP's ViT, BERT and the MLP head in one state dict), or a
    /// safetensors copy with its keys.
    pub checkpoint: PathBuf,
    /// ImageReward's `med_config.json` for the text encoder; none: its sizes are read off the
    /// checkpoint (BERT's 64-wide heads).
    pub med_config: Option<PathBuf>,
    /// A BERT `vocab.txt` (uncased) or `tokenizer.json`; none: bert-base-uncased's, built in.
    pub tokenizer: Option<PathBuf>,
    /// The ViT's attention heads; none: width / 64 (BLIP's ViT-B and ViT-L).
    pub vision_heads: Option<usize>,
    /// Prompt tokens kept, `[CLS]` and `[SEP]` included (35: `score`; 512: ∇-GFlowNet).
    pub max_length: usize,
    pub preprocess: Preprocess,
    /// The precision the ViT and BERT are held and run in: `F32` (the default), `Bf16` or
    /// `F16` (norms and attention's softmax in f32, the head and the scores f32), as the
    /// frozen SD networks' `dtype`. Left out of the run id when f32.
    #[serde(skip_serializing_if = "Precision::is_f32")]
    pub dtype: Precision,
}

impl Default for ImageRewardParams {
    fn default() -> Self {
        Self {
            checkpoint: "ImageReward.pt".into(),
            med_config: None,
            tokenizer: None,
            vision_heads: None,
            max_length: 35,
            preprocess: Preprocess::Processor,
            dtype: Precision::F32,
        }
    }
}

impl Validate for ImageRewardParams {
    fn validate(&self) -> Result<(), Invalid> {
        if self.max_length < 2 {
            return Err(Invalid::new(
                "max_length",
                format!(
                    "{}: at least 2 ([CLS] and [SEP]); 35 as ImageReward's score",
                    self.max_length
                ),
            ));
        }
        if self.vision_heads == Some(0) {
            return Err(Invalid::new("vision_heads", "0: at least 1"));
        }
        Ok(())
    }
}

impl ImageRewardParams {
    /// The parameters with their files resolved by `cx` (sweeps name them from their folder).
    fn resolved<B: Backend>(&self, cx: &BuildContext<'_, B>) -> Self {
        Self {
            checkpoint: cx.path(&self.checkpoint),
            med_config: self.med_config.as_deref().map(|p| cx.path(p)),
            tokenizer: self.tokenizer.as_deref().map(|p| cx.path(p)),
            ..self.clone()
        }
    }
}

/// A load error named by the parameter whose file it is about.
fn load_error(params: &ImageRewardParams, e: &LoadError) -> String {
    let about = |path: &Path| match e {
        LoadError::MissingFile { paths, .. } => paths.iter().any(|p| p == path),
        LoadError::Read { path: p, .. } | LoadError::Layout { path: p, .. } => p == path,
        LoadError::Tensors { file, .. } => file == path,
    };
    let (field, path) = match &params.med_config {
        Some(med) if about(med) => ("med_config", med),
        _ => ("checkpoint", &params.checkpoint),
    };
    format!(
        "{field} = {}: {}; get {GET_IMAGE_REWARD}",
        path.display(),
        e.without_sd_source()
    )
}

/// The tokenizer `params` name, with BLIP's tokens appended.
fn tokenizer(params: &ImageRewardParams) -> Result<BertTokenizer, String> {
    let base = match &params.tokenizer {
        None => BertTokenizer::uncased(),
        Some(path) => BertTokenizer::from_file(path).map_err(|e| {
            format!(
                "tokenizer = {}: {}; get bert-base-uncased's `vocab.txt` from \
                 https://huggingface.co/google-bert/bert-base-uncased, or leave `tokenizer` \
                 out for the built-in one",
                path.display(),
                e.without_sd_source()
            )
        })?,
    };
    Ok(base.with_added_tokens(&BLIP_TOKENS))
}

/// What one checkpoint loads into, once per process: the networks, their sizes and the
/// tokenizer that feeds them.
struct Loaded<B: Backend> {
    model: ImageRewardModel<B>,
    config: ImageRewardConfig,
    tokenizer: Arc<BertTokenizer>,
}

/// Scores of pixels (preprocessed) and their prompts, cut to `max_length` tokens.
fn scores<B: Backend>(
    model: &ImageRewardModel<B>,
    tokenizer: &BertTokenizer,
    max_length: usize,
    pixels: Tensor<B, 4>,
    prompts: &[String],
) -> Tensor<B, 1> {
    let batch = tokenizer.encode_batch::<B>(prompts, max_length, &pixels.device());
    model.forward(pixels, batch.ids, batch.padding)
}

/// Images in [0, 1] as the ViT's input by `preprocess`, OpenAI's mean and std applied.
fn pixels<B: Backend>(images: Tensor<B, 4>, size: usize, preprocess: Preprocess) -> Tensor<B, 4> {
    clip_normalise(match preprocess {
        Preprocess::Processor => pil_shortest_side_crop(images, size, CropOffset::RoundHalfEven),
        Preprocess::Differentiable => tensor_shortest_side_crop(images, size),
    })
}

/// The reward: networks on the autodiff backend for gradients, their inner twins for scores.
pub struct ImageReward<B: AutodiffBackend> {
    nets: Arc<Loaded<B>>,
    infer: ImageRewardModel<B::InnerBackend>,
    max_length: usize,
    preprocess: Preprocess,
}

impl<B: AutodiffBackend> ImageReward<B> {
    /// Loads the networks once per process.
    ///
    /// # Errors
    /// Missing or misfit files, named with where to get the real ones; a tokenizer whose ids
    /// the text encoder has no embeddings for; `max_length` beyond its positions.
    pub fn build(params: &ImageRewardParams, cx: &BuildContext<'_, B>) -> Result<Self, String> {
        params.validate().map_err(|e| e.to_string())?;
        let params = params.resolved(cx);
        let mut files: Vec<&Path> = vec![&params.checkpoint];
        files.extend(params.med_config.as_deref());
        files.extend(params.tokenizer.as_deref());
        let what = format!(
            "imagereward/heads {:?}/{}",
            params.vision_heads,
            params.dtype.name()
        );
        let nets = cx.cache.get_or_load(&cache_key::<B>(&what, &files), || {
            let (model, config) = ImageRewardModel::<B>::load(
                &params.checkpoint,
                params.med_config.as_deref(),
                params.vision_heads,
                &cx.device,
            )
            .map_err(|e| load_error(&params, &e))?;
            let tokenizer = tokenizer(&params)?;
            check_vocabulary(&config, &tokenizer)?;
            Ok(Loaded {
                model: model.with_precision(params.dtype),
                config,
                tokenizer: Arc::new(tokenizer),
            })
        })?;
        let positions = nets.config.text.max_position_embeddings;
        if params.max_length > positions {
            return Err(format!(
                "max_length = {}: the text encoder has {positions} positions",
                params.max_length
            ));
        }
        Ok(Self {
            infer: nets.model.valid(),
            nets,
            max_length: params.max_length,
            preprocess: params.preprocess,
        })
    }
}

/// The tokenizer's ids against what the text encoder can embed.
fn check_vocabulary(config: &ImageRewardConfig, tokenizer: &BertTokenizer) -> Result<(), String> {
    let embedded = config.text.vocab_size;
    if tokenizer.vocab_size() > embedded {
        return Err(format!(
            "the tokenizer has {} ids (BLIP's [DEC] and [ENC] included), but the checkpoint's \
             text encoder embeds {embedded}: not the tokenizer this checkpoint was trained with",
            tokenizer.vocab_size()
        ));
    }
    Ok(())
}

impl<B: AutodiffBackend> Reward<B> for ImageReward<B> {
    fn name(&self) -> &str {
        "imagereward"
    }

    fn score(
        &self,
        samples: Tensor<B::InnerBackend, 4>,
        prompts: &[String],
    ) -> Tensor<B::InnerBackend, 1> {
        let size = self.nets.config.vision.image_size;
        let pixels = pixels(samples, size, self.preprocess);
        scores(
            &self.infer,
            &self.nets.tokenizer,
            self.max_length,
            pixels,
            prompts,
        )
    }

    fn differentiable(&self) -> Option<&dyn DifferentiableReward<B>> {
        Some(self)
    }
}

impl<B: AutodiffBackend> DifferentiableReward<B> for ImageReward<B> {
    fn score_with_graph(&self, samples: Tensor<B, 4>, prompts: &[String]) -> Tensor<B, 1> {
        let size = self.nets.config.vision.image_size;
        let pixels = pixels(samples, size, Preprocess::Differentiable);
        let n = &self.nets;
        scores(&n.model, &n.tokenizer, self.max_length, pixels, prompts)
    }
}

/// `bench doctor`'s checks: the checkpoint against the sizes read off it (tensor list only),
/// and the tokenizer.
pub fn check_files(params: &ImageRewardParams) -> Vec<FileCheck> {
    let checked = image_reward::check::<Flex>(
        &params.checkpoint,
        params.med_config.as_deref(),
        params.vision_heads,
        &Default::default(),
    )
    .map(|(config, report)| {
        let (v, t) = (&config.vision, &config.text);
        let described =
            format!(
            "BLIP ViT: {} layers of width {}, {} px in patches of {}; BERT: {} layers of width \
             {}, {} ids, cross-attention to the image",
            v.layers, v.width, v.image_size, v.patch_size, t.num_hidden_layers, t.hidden_size,
            t.vocab_size
        );
        (described, report)
    });
    let mut checks = vec![FileCheck::from_report(
        "checkpoint: ImageReward (BLIP + BERT + MLP)",
        params.checkpoint.clone(),
        checked,
        GET_IMAGE_REWARD,
    )];
    if let Some(path) = &params.tokenizer {
        checks.push(FileCheck {
            what: "tokenizer: BERT WordPiece".into(),
            path: path.clone(),
            outcome: tokenizer(params).map(|t| format!("{} ids", t.vocab_size())),
        });
    }
    checks
}
