//! ImageReward (Xu et al. 2023; ∇-GFlowNet's reward): BLIP's ViT-L/16 turns the image into
//! tokens, BLIP's BERT-base reads the prompt while cross-attending to them, and an MLP with the
//! LAION aesthetic head's layout scores the `[CLS]` state; the score is
//! `(r − 0.16717362830052426) / 1.0333394966054072` (the package's `ImageReward.score` and
//! `score_gard` alike).
//!
//! `ImageReward.pt` holds the three networks under `blip.visual_encoder.`, `blip.text_encoder.`
//! and `mlp.`. The architecture is read off the file's shapes, so other BLIP sizes load: the ViT's
//! width, patch, image size, depth and MLP width; attention heads are `width / 64` (BLIP's
//! `create_vit`: base 768/12, large 1024/16) unless given. The text side comes from
//! `med_config.json` when one is given (its `encoder_width` replaced by the ViT's, as
//! `BLIP_Pretrain` does), else from the shapes with BERT's 64-wide heads.

use std::collections::BTreeSet;
use std::path::Path;

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor};

use crate::aesthetic_head::{head_layout, AestheticHead};
use crate::bert::{self, BertConfig, BertModel};
use crate::blip::{self, BlipVisionConfig};
use crate::clip::ClipVisionModel;
use crate::precision::{cast_module, Precision};
use crate::weights::{check_mapped, read_json, read_tensors, FileReport, Header, LoadError};

/// ImageReward's normalisation of the head's output.
pub const MEAN: f64 = 0.16717362830052426;
pub const STD: f64 = 1.0333394966054072;

pub const VISION_PREFIX: &str = "blip.visual_encoder.";
pub const TEXT_PREFIX: &str = "blip.text_encoder.";
pub const HEAD_PREFIX: &str = "mlp.";

/// The two encoders' sizes.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRewardConfig {
    pub vision: BlipVisionConfig,
    pub text: BertConfig,
}

/// The size `dim` of the tensor `key`, or why not.
fn dim(header: &Header, key: &str, dim: usize) -> Result<usize, String> {
    let info = header
        .get(key)
        .ok_or_else(|| format!("`{key}` is missing: not an ImageReward checkpoint"))?;
    info.shape
        .get(dim)
        .copied()
        .ok_or_else(|| format!("`{key}` has shape {:?}", info.shape))
}

/// The number of blocks `{prefix}{i}.…`, checked to be numbered 0, 1, ….
fn count_blocks(header: &Header, prefix: &str) -> Result<usize, String> {
    let indices: BTreeSet<usize> = header
        .keys()
        .filter_map(|k| k.strip_prefix(prefix)?.split('.').next()?.parse().ok())
        .collect();
    match indices.last() {
        Some(&last) if last + 1 == indices.len() => Ok(indices.len()),
        Some(_) => Err(format!(
            "the blocks `{prefix}{{i}}` are not numbered 0, 1, …"
        )),
        None => Err(format!(
            "no `{prefix}{{i}}` blocks: not an ImageReward checkpoint"
        )),
    }
}

/// Heads of 64 channels, as BLIP's ViTs and BERT-base have.
fn heads_of_64(width: usize, what: &str) -> Result<usize, String> {
    if width.is_multiple_of(64) && width > 0 {
        Ok(width / 64)
    } else {
        Err(format!(
            "{what} width {width} is not a multiple of 64: give its number of attention heads"
        ))
    }
}

impl ImageRewardConfig {
    /// ImageReward-v1.0's sizes: ViT-L/16 at 224 px, BERT-base with cross-attention to 1024-wide
    /// image tokens, a vocabulary of 30524 (bert-base-uncased's with `[DEC]` and `[ENC]`).
    pub fn v1() -> Self {
        Self {
            vision: BlipVisionConfig::vit_l16(),
            text: BertConfig {
                vocab_size: 30524,
                type_vocab_size: 0,
                add_cross_attention: true,
                encoder_width: Some(1024),
                ..BertConfig::default()
            },
        }
    }

    /// The sizes of a checkpoint from its tensor shapes (`header`), with the text side from
    /// `med_config` when given and the ViT's heads from `vision_heads` when given.
    ///
    /// # Errors
    /// Tensors the sizes are read from missing or of odd shapes, widths that do not split into
    /// heads, a text encoder without cross-attention.
    pub fn infer(
        header: &Header,
        med_config: Option<BertConfig>,
        vision_heads: Option<usize>,
    ) -> Result<Self, String> {
        let v = |k: &str| format!("{VISION_PREFIX}{k}");
        let t = |k: &str| format!("{TEXT_PREFIX}{k}");
        let patch_weight = v("patch_embed.proj.weight");
        let width = dim(header, &patch_weight, 0)?;
        let channels = dim(header, &patch_weight, 1)?;
        let patch_size = dim(header, &patch_weight, 2)?;
        if channels != 3 || patch_size == 0 || width == 0 {
            return Err(format!(
                "`{patch_weight}` has shape {:?}: not a patch embedding of RGB images",
                header[&patch_weight].shape
            ));
        }
        let tokens = dim(header, &v("pos_embed"), 1)?;
        let grid = (1..=tokens).find(|g| g * g + 1 >= tokens).unwrap_or(0);
        if grid * grid + 1 != tokens {
            return Err(format!(
                "`{}` has {tokens} positions, not a class token and a square grid",
                v("pos_embed")
            ));
        }
        let heads = match vision_heads {
            Some(h) if h > 0 && width % h == 0 => h,
            Some(h) => {
                return Err(format!(
                    "vision_heads {h} does not divide the width {width}"
                ))
            }
            None => heads_of_64(width, "the ViT's")?,
        };
        let vision = BlipVisionConfig {
            image_size: grid * patch_size,
            patch_size,
            width,
            layers: count_blocks(header, &v("blocks."))?,
            heads,
            mlp_width: dim(header, &v("blocks.0.mlp.fc1.weight"), 0)?,
        };
        let text = match med_config {
            Some(config) => BertConfig {
                encoder_width: Some(width),
                ..config
            },
            None => {
                let words = t("embeddings.word_embeddings.weight");
                let hidden = dim(header, &words, 1)?;
                BertConfig {
                    vocab_size: dim(header, &words, 0)?,
                    hidden_size: hidden,
                    num_hidden_layers: count_blocks(header, &t("encoder.layer."))?,
                    num_attention_heads: heads_of_64(hidden, "the text encoder's")?,
                    intermediate_size: dim(
                        header,
                        &t("encoder.layer.0.intermediate.dense.weight"),
                        0,
                    )?,
                    max_position_embeddings: dim(
                        header,
                        &t("embeddings.position_embeddings.weight"),
                        0,
                    )?,
                    add_cross_attention: header
                        .contains_key(&t("encoder.layer.0.crossattention.self.key.weight")),
                    encoder_width: Some(width),
                    ..BertConfig::default()
                }
            }
        };
        // BLIP's BERT has no token-type embeddings, whatever its config says.
        let types = t("embeddings.token_type_embeddings.weight");
        let text = match header.get(&types) {
            Some(info) if info.shape.len() == 2 => BertConfig {
                type_vocab_size: info.shape[0],
                ..text
            },
            _ => BertConfig {
                type_vocab_size: 0,
                ..text
            },
        };
        if !text.add_cross_attention {
            return Err(
                "the text encoder has no cross-attention to the image (add_cross_attention)".into(),
            );
        }
        Ok(Self { vision, text })
    }

    /// The sizes of `checkpoint` (see [`ImageRewardConfig::infer`]), `med_config` read from its
    /// JSON file.
    ///
    /// # Errors
    /// Unreadable files, or sizes that cannot be read off the checkpoint.
    pub fn of_files(
        header: &Header,
        checkpoint: &Path,
        med_config: Option<&Path>,
        vision_heads: Option<usize>,
    ) -> Result<Self, LoadError> {
        let med_config = med_config.map(read_json::<BertConfig>).transpose()?;
        Self::infer(header, med_config, vision_heads)
            .map_err(|message| layout_error(checkpoint, message))
    }
}

fn layout_error(checkpoint: &Path, message: String) -> LoadError {
    LoadError::Layout {
        path: checkpoint.to_path_buf(),
        message,
    }
}

/// The head must read the text encoder's `[CLS]` state.
fn head_fits(checkpoint: &Path, head_input: usize, text_width: usize) -> Result<(), LoadError> {
    if head_input == text_width {
        return Ok(());
    }
    Err(layout_error(
        checkpoint,
        format!(
            "the head `{HEAD_PREFIX}` takes {head_input} features, the text encoder gives \
             {text_width}"
        ),
    ))
}

/// The three networks of ImageReward.
#[derive(Module, Debug)]
pub struct ImageRewardModel<B: Backend> {
    pub vision: ClipVisionModel<B>,
    pub text: BertModel<B>,
    pub head: AestheticHead<B>,
}

impl<B: Backend> ImageRewardModel<B> {
    /// Loads `checkpoint` (`ImageReward.pt`, or a safetensors copy with its keys).
    ///
    /// # Errors
    /// Missing or unreadable files; tensors missing or mis-shaped, named by their keys; a
    /// head that does not take the text encoder's width.
    pub fn load(
        checkpoint: &Path,
        med_config: Option<&Path>,
        vision_heads: Option<usize>,
        device: &B::Device,
    ) -> Result<(Self, ImageRewardConfig), LoadError> {
        let (header, _) = read_tensors(checkpoint)?;
        let config = ImageRewardConfig::of_files(&header, checkpoint, med_config, vision_heads)?;
        let vision = blip::load_vision(&config.vision, checkpoint, VISION_PREFIX, device)?;
        let (text, text_config) =
            BertModel::load(config.text.clone(), checkpoint, Some(TEXT_PREFIX), device)?;
        let head = AestheticHead::load_under(checkpoint, HEAD_PREFIX, device)
            .map_err(|message| layout_error(checkpoint, message))?;
        head_fits(checkpoint, head.input_width(), text_config.hidden_size)?;
        let config = ImageRewardConfig {
            text: text_config,
            ..config
        };
        Ok((Self { vision, text, head }, config))
    }

    /// The model with its two encoders held and run in `precision` (norms and softmax in f32,
    /// see [`crate::precision`]); the head, a few thousand weights reading f32 features, stays
    /// f32 as the aesthetic head does.
    pub fn with_precision(self, precision: Precision) -> Self {
        Self {
            vision: cast_module(self.vision, precision),
            text: cast_module(self.text, precision),
            head: self.head,
        }
    }

    /// The scores `[N]` of pixels `[N, 3, S, S]` (preprocessed: see the reward) with prompt
    /// ids `[N, L]` whose padded positions are true in `padding`.
    pub fn forward(
        &self,
        pixels: Tensor<B, 4>,
        ids: Tensor<B, 2, Int>,
        padding: Tensor<B, 2, Bool>,
    ) -> Tensor<B, 1> {
        let image_tokens = self.vision.tokens(pixels);
        let hidden = self
            .text
            .forward_with_context(ids, padding, Some(image_tokens));
        let [n, _, width] = hidden.dims();
        let cls = hidden.slice([0..n, 0..1, 0..width]).reshape([n, width]);
        (self.head.forward(cls) - MEAN) / STD
    }
}

/// `bench doctor`'s check of a checkpoint from its tensor list (no tensor data is read): the
/// sizes read off it, and the encoders' tensors it misses or mis-shapes.
///
/// # Errors
/// An unreadable file, or one whose sizes cannot be read.
pub fn check<B: Backend>(
    checkpoint: &Path,
    med_config: Option<&Path>,
    vision_heads: Option<usize>,
    device: &B::Device,
) -> Result<(ImageRewardConfig, FileReport), LoadError> {
    let (header, _) = read_tensors(checkpoint)?;
    let config = ImageRewardConfig::of_files(&header, checkpoint, med_config, vision_heads)?;
    let vision = config.vision.tower().init::<B>(device);
    let text = config.text.init::<B>(device);
    let mut report = check_mapped(
        &vision,
        checkpoint,
        &header,
        "",
        &blip::vision_keys(VISION_PREFIX),
    );
    let text_report = check_mapped(&text, checkpoint, &header, "", &bert::keys(TEXT_PREFIX));
    report.parameters += text_report.parameters;
    report.problems.extend(text_report.problems);
    let shapes = header
        .iter()
        .map(|(k, info)| (k.clone(), info.shape.clone()))
        .collect();
    let (_, widths) =
        head_layout(&shapes, HEAD_PREFIX).map_err(|message| layout_error(checkpoint, message))?;
    head_fits(checkpoint, widths[0], config.text.hidden_size)?;
    report.parameters += widths.windows(2).map(|w| w[0] * w[1] + w[1]).sum::<usize>();
    Ok((config, report))
}
