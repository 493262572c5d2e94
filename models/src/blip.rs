//! BLIP's ViT (ImageReward's image encoder) on the shared CLIP vision tower: the same blocks
//! with a patch convolution that has a bias, no layer norm before the encoder, LN eps 1e-6,
//! exact GELU, and every token's output after the final norm (the image embeddings the text
//! encoder attends to) instead of a projected class token. Keys are BLIP's (`vit.py`, timm's
//! layout): q, k and v fused in `qkv`, the class token `[1, 1, D]`, the position embedding
//! `[1, L, D]`.

use std::path::Path;

use burn::tensor::backend::Backend;

use crate::clip::{ClipActivation, ClipVisionConfig, ClipVisionModel};
use crate::weights::{load_mapped, FileKey, LoadError};

/// BLIP's `VisionTransformer` sizes (`create_vit`: `base` is ViT-B/16, `large` ViT-L/16).
#[derive(Debug, Clone, PartialEq)]
pub struct BlipVisionConfig {
    pub image_size: usize,
    pub patch_size: usize,
    pub width: usize,
    pub layers: usize,
    pub heads: usize,
    /// The MLP's hidden width (timm's `int(width · mlp_ratio)`, 4× in BLIP's ViTs).
    pub mlp_width: usize,
}

impl BlipVisionConfig {
    /// ImageReward's ViT-L/16 at 224 px.
    pub fn vit_l16() -> Self {
        Self {
            image_size: 224,
            patch_size: 16,
            width: 1024,
            layers: 24,
            heads: 16,
            mlp_width: 4096,
        }
    }

    /// The tower in the shared vision model's terms.
    pub fn tower(&self) -> ClipVisionConfig {
        ClipVisionConfig {
            hidden_size: self.width,
            intermediate_size: self.mlp_width,
            projection_dim: self.width,
            num_hidden_layers: self.layers,
            num_attention_heads: self.heads,
            num_channels: 3,
            image_size: self.image_size,
            patch_size: self.patch_size,
            hidden_act: ClipActivation::Gelu,
            layer_norm_eps: 1e-6,
            patch_bias: true,
            pre_norm: false,
            projection: false,
        }
    }
}

/// Where the tower's tensors are in a BLIP state dict whose ViT keys start with `prefix`
/// (`blip.visual_encoder.` in ImageReward.pt).
pub fn vision_keys(prefix: &str) -> impl Fn(&str) -> FileKey + '_ {
    move |key: &str| {
        let key = key.strip_prefix("vision_model.").unwrap_or(key);
        let at = |k: String| format!("{prefix}{k}");
        match key {
            "embeddings.class_embedding" => FileKey::reshaped(at("cls_token".into())),
            "embeddings.position_embedding.weight" => FileKey::reshaped(at("pos_embed".into())),
            _ => {
                if let Some(rest) = key.strip_prefix("embeddings.patch_embedding.") {
                    FileKey::plain(at(format!("patch_embed.proj.{rest}")))
                } else if let Some(rest) = key.strip_prefix("post_layernorm.") {
                    FileKey::plain(at(format!("norm.{rest}")))
                } else if let Some(rest) = key.strip_prefix("encoder.layers.") {
                    block_key(prefix, rest)
                } else {
                    FileKey::plain(at(key.to_string()))
                }
            }
        }
    }
}

/// A block's key (`{i}.self_attn.q_proj.weight`, …) in BLIP's naming (`blocks.{i}.attn.qkv`, …).
fn block_key(prefix: &str, rest: &str) -> FileKey {
    let (index, inner) = rest.split_once('.').unwrap_or((rest, ""));
    let (module, param) = inner.rsplit_once('.').unwrap_or((inner, ""));
    let block = format!("{prefix}blocks.{index}.");
    match module {
        "self_attn.q_proj" => FileKey::part(format!("{block}attn.qkv.{param}"), 0, 3),
        "self_attn.k_proj" => FileKey::part(format!("{block}attn.qkv.{param}"), 1, 3),
        "self_attn.v_proj" => FileKey::part(format!("{block}attn.qkv.{param}"), 2, 3),
        "self_attn.out_proj" => FileKey::plain(format!("{block}attn.proj.{param}")),
        "layer_norm1" => FileKey::plain(format!("{block}norm1.{param}")),
        "layer_norm2" => FileKey::plain(format!("{block}norm2.{param}")),
        _ => FileKey::plain(format!("{block}{inner}")),
    }
}

/// BLIP's ViT from a checkpoint (a torch pickle such as ImageReward.pt, or safetensors).
///
/// # Errors
/// Missing or unreadable files, or tensors missing or mis-shaped (named by their keys).
pub fn load_vision<B: Backend>(
    config: &BlipVisionConfig,
    checkpoint: &Path,
    prefix: &str,
    device: &B::Device,
) -> Result<ClipVisionModel<B>, LoadError> {
    load_mapped(
        config.tower().init(device),
        checkpoint,
        &vision_keys(prefix),
    )
}
