//! OpenCLIP checkpoints on the CLIP towers: HPSv2's ViT-H/14 (and any open_clip `CLIP` with a
//! plain ViT and a plain text transformer) is the same network as transformers' CLIP with other
//! key names, exact GELU, and three layouts the loader maps: q, k and v stacked in one
//! `in_proj_weight`, the projections stored `[in, out]` for `x @ proj`, and the position
//! embeddings as bare tensors. So one ViT and one text transformer serve both families.
//!
//! The model's sizes come from open_clip's model config (`open_clip/model_configs/*.json`:
//! `embed_dim`, `vision_cfg`, `text_cfg`); fields left out take open_clip's dataclass defaults.
//! Features of other OpenCLIP models that these towers do not have (layer scale, attentional
//! pooling, Hugging Face or timm towers, …) are refused by name rather than loaded wrong.

use std::path::Path;

use serde::Deserialize;

use super::config_file::TowerConfig;
use super::encoder::ClipActivation;
use super::text_model::ClipTextConfig;
use super::text_projection::ClipTextModelWithProjection;
use super::vision_model::{ClipVisionConfig, ClipVisionModel};
use crate::weights::{load_mapped, read_json, FileKey, LoadError};

/// open_clip's `CLIPVisionCfg` (the fields these towers depend on).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct OpenClipVisionCfg {
    pub image_size: usize,
    pub layers: usize,
    pub width: usize,
    pub head_width: usize,
    pub mlp_ratio: f64,
    pub patch_size: usize,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl Default for OpenClipVisionCfg {
    fn default() -> Self {
        Self {
            image_size: 224,
            layers: 12,
            width: 768,
            head_width: 64,
            mlp_ratio: 4.0,
            patch_size: 16,
            other: serde_json::Map::new(),
        }
    }
}

/// open_clip's `CLIPTextCfg` (the fields these towers depend on).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct OpenClipTextCfg {
    pub context_length: usize,
    pub vocab_size: usize,
    pub width: usize,
    pub heads: usize,
    pub layers: usize,
    pub mlp_ratio: f64,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl Default for OpenClipTextCfg {
    fn default() -> Self {
        Self {
            context_length: 77,
            vocab_size: 49408,
            width: 512,
            heads: 8,
            layers: 12,
            mlp_ratio: 4.0,
            other: serde_json::Map::new(),
        }
    }
}

/// An open_clip model config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OpenClipConfig {
    pub embed_dim: usize,
    #[serde(default)]
    pub quick_gelu: bool,
    #[serde(default)]
    pub vision_cfg: OpenClipVisionCfg,
    #[serde(default)]
    pub text_cfg: OpenClipTextCfg,
}

/// Config fields of OpenCLIP features these towers lack, with the value that means "off".
const OFF: &[(&str, &str)] = &[
    ("ls_init_value", "null"),
    ("attentional_pool", "false"),
    ("attn_pooler_queries", "null"),
    ("no_ln_pre", "false"),
    ("final_ln_after_pool", "false"),
    ("global_average_pool", "false"),
    ("input_patchnorm", "false"),
    ("embed_cls", "false"),
    ("proj_bias", "false"),
    ("timm_model_name", "null"),
    ("hf_model_name", "null"),
    ("pos_embed_type", "\"learnable\""),
];

impl OpenClipConfig {
    /// HPSv2's tower: open_clip's `ViT-H-14.json`.
    pub fn vit_h14() -> Self {
        Self {
            embed_dim: 1024,
            quick_gelu: false,
            vision_cfg: OpenClipVisionCfg {
                image_size: 224,
                layers: 32,
                width: 1280,
                head_width: 80,
                patch_size: 14,
                ..OpenClipVisionCfg::default()
            },
            text_cfg: OpenClipTextCfg {
                context_length: 77,
                vocab_size: 49408,
                width: 1024,
                heads: 16,
                layers: 24,
                ..OpenClipTextCfg::default()
            },
        }
    }

    /// Reads a model config file, refusing features these towers lack.
    ///
    /// # Errors
    /// An unreadable file, or a config of a model these towers cannot run.
    pub fn from_file(path: &Path) -> Result<Self, LoadError> {
        let config: Self = read_json(path)?;
        config.check().map_err(|message| LoadError::Layout {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        for (tower, other) in [
            ("vision_cfg", &self.vision_cfg.other),
            ("text_cfg", &self.text_cfg.other),
        ] {
            for (field, off) in OFF {
                if let Some(value) = other.get(*field) {
                    let off: serde_json::Value =
                        serde_json::from_str(off).expect("OFF holds JSON literals");
                    if *value != off && !(value.is_null() && off == false) {
                        return Err(format!(
                            "{tower}.{field} = {value}: an OpenCLIP feature bench's CLIP towers \
                             do not have (only plain ViT and text transformers load)"
                        ));
                    }
                }
            }
            if let Some(pool) = other.get("pool_type").and_then(|p| p.as_str()) {
                let plain = if tower == "vision_cfg" {
                    "tok"
                } else {
                    "argmax"
                };
                if pool != plain {
                    return Err(format!(
                        "{tower}.pool_type = {pool:?}: only {plain:?} loads"
                    ));
                }
            }
        }
        let v = &self.vision_cfg;
        if v.head_width == 0 || !v.width.is_multiple_of(v.head_width) {
            return Err(format!(
                "vision_cfg: width {} is not a multiple of head_width {}",
                v.width, v.head_width
            ));
        }
        if self.embed_dim == 0 {
            return Err("embed_dim must be positive".into());
        }
        self.vision()
            .check()
            .map_err(|e| format!("vision_cfg: {e}"))?;
        self.text().check().map_err(|e| format!("text_cfg: {e}"))
    }

    fn activation(&self) -> ClipActivation {
        if self.quick_gelu {
            ClipActivation::QuickGelu
        } else {
            ClipActivation::Gelu
        }
    }

    /// The vision tower as transformers' config spells it.
    pub fn vision(&self) -> ClipVisionConfig {
        let v = &self.vision_cfg;
        ClipVisionConfig {
            hidden_size: v.width,
            intermediate_size: (v.width as f64 * v.mlp_ratio) as usize,
            projection_dim: self.embed_dim,
            num_hidden_layers: v.layers,
            num_attention_heads: v.width / v.head_width,
            num_channels: 3,
            image_size: v.image_size,
            patch_size: v.patch_size,
            hidden_act: self.activation(),
            layer_norm_eps: 1e-5,
            ..ClipVisionConfig::default()
        }
    }

    /// The text tower as transformers' config spells it.
    pub fn text(&self) -> ClipTextConfig {
        let t = &self.text_cfg;
        ClipTextConfig {
            vocab_size: t.vocab_size,
            hidden_size: t.width,
            intermediate_size: (t.width as f64 * t.mlp_ratio) as usize,
            num_hidden_layers: t.layers,
            num_attention_heads: t.heads,
            max_position_embeddings: t.context_length,
            hidden_act: self.activation(),
            layer_norm_eps: 1e-5,
        }
    }
}

/// A transformer block's key (`layers.{i}.…` in transformers' naming) in open_clip's naming
/// (`resblocks.{i}.…`), below `prefix`.
fn block_key(prefix: &str, rest: &str) -> FileKey {
    let Some((index, inner)) = rest.split_once('.') else {
        return FileKey::plain(format!("{prefix}{rest}"));
    };
    let block = format!("{prefix}resblocks.{index}.");
    let (param_base, param) = inner.rsplit_once('.').unwrap_or((inner, ""));
    match param_base {
        "self_attn.q_proj" | "self_attn.k_proj" | "self_attn.v_proj" => {
            let part = ["q", "k", "v"]
                .iter()
                .position(|p| param_base.ends_with(&format!("{p}_proj")))
                .unwrap_or(0);
            FileKey::part(format!("{block}attn.in_proj_{param}"), part, 3)
        }
        "self_attn.out_proj" => FileKey::plain(format!("{block}attn.out_proj.{param}")),
        "layer_norm1" => FileKey::plain(format!("{block}ln_1.{param}")),
        "layer_norm2" => FileKey::plain(format!("{block}ln_2.{param}")),
        "mlp.fc1" => FileKey::plain(format!("{block}mlp.c_fc.{param}")),
        "mlp.fc2" => FileKey::plain(format!("{block}mlp.c_proj.{param}")),
        _ => FileKey::plain(format!("{block}{inner}")),
    }
}

/// Where [`ClipVisionModel`]'s tensors are in an open_clip state dict.
pub fn vision_keys(key: &str) -> FileKey {
    let key = key.strip_prefix("vision_model.").unwrap_or(key);
    match key {
        "embeddings.class_embedding" => FileKey::plain("visual.class_embedding"),
        "embeddings.patch_embedding.weight" => FileKey::plain("visual.conv1.weight"),
        "embeddings.position_embedding.weight" => FileKey::plain("visual.positional_embedding"),
        "visual_projection.weight" => FileKey::transposed("visual.proj"),
        _ => {
            if let Some(rest) = key.strip_prefix("encoder.layers.") {
                block_key("visual.transformer.", rest)
            } else if let Some(rest) = key.strip_prefix("pre_layrnorm.") {
                FileKey::plain(format!("visual.ln_pre.{rest}"))
            } else if let Some(rest) = key.strip_prefix("post_layernorm.") {
                FileKey::plain(format!("visual.ln_post.{rest}"))
            } else {
                FileKey::plain(format!("visual.{key}"))
            }
        }
    }
}

/// Where [`ClipTextModelWithProjection`]'s tensors are in an open_clip state dict.
pub fn text_keys(key: &str) -> FileKey {
    let key = key.strip_prefix("text_model.").unwrap_or(key);
    match key {
        "embeddings.token_embedding.weight" => FileKey::plain("token_embedding.weight"),
        "embeddings.position_embedding.weight" => FileKey::plain("positional_embedding"),
        "text_projection.weight" => FileKey::transposed("text_projection"),
        _ => {
            if let Some(rest) = key.strip_prefix("encoder.layers.") {
                block_key("transformer.", rest)
            } else if let Some(rest) = key.strip_prefix("final_layer_norm.") {
                FileKey::plain(format!("ln_final.{rest}"))
            } else {
                FileKey::plain(key.to_string())
            }
        }
    }
}

/// Both towers of an open_clip checkpoint (a state dict in a `.pt`/`.bin`, at the top level or
/// under `state_dict`, or a safetensors file).
///
/// # Errors
/// Missing or unreadable files, or tensors missing or mis-shaped (named by their keys).
pub fn load_open_clip<B: burn::tensor::backend::Backend>(
    config: &OpenClipConfig,
    checkpoint: &Path,
    device: &B::Device,
) -> Result<(ClipVisionModel<B>, ClipTextModelWithProjection<B>), LoadError> {
    let vision = load_mapped(config.vision().init(device), checkpoint, &vision_keys)?;
    let text = load_mapped(
        config.text().init_with_projection(config.embed_dim, device),
        checkpoint,
        &text_keys,
    )?;
    Ok((vision, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_read_with_open_clips_defaults_and_refuse_other_features() {
        let read = |text: &str| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("model.json");
            std::fs::write(&path, text).unwrap();
            OpenClipConfig::from_file(&path)
        };
        let h14 = read(
            r#"{"embed_dim": 1024, "vision_cfg": {"image_size": 224, "layers": 32, "width": 1280,
                "head_width": 80, "patch_size": 14}, "text_cfg": {"context_length": 77,
                "vocab_size": 49408, "width": 1024, "heads": 16, "layers": 24}}"#,
        )
        .unwrap();
        assert_eq!(h14.vision(), OpenClipConfig::vit_h14().vision());
        assert_eq!(h14.text(), OpenClipConfig::vit_h14().text());
        assert_eq!(h14.vision().num_attention_heads, 16);
        assert_eq!(h14.vision().intermediate_size, 5120);
        // Off switches written out load; features that are on are refused by name.
        assert!(read(r#"{"embed_dim": 8, "vision_cfg": {"ls_init_value": null}}"#).is_ok());
        for (text, field) in [
            (
                r#"{"embed_dim": 8, "vision_cfg": {"ls_init_value": 1e-5}}"#,
                "ls_init_value",
            ),
            (
                r#"{"embed_dim": 8, "text_cfg": {"hf_model_name": "roberta"}}"#,
                "hf_model_name",
            ),
            (
                r#"{"embed_dim": 8, "vision_cfg": {"pool_type": "avg"}}"#,
                "pool_type",
            ),
            (
                r#"{"embed_dim": 8, "vision_cfg": {"head_width": 0}}"#,
                "head_width",
            ),
        ] {
            let err = read(text).unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
    }
}
