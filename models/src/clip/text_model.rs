//! The CLIP text transformer that conditions SD v1 (transformers' `CLIPTextModel`).
//!
//! SD v1 uses the full last hidden state `[N, 77, hidden]` after the final layer norm (not the
//! pooled output) as the UNet's cross-attention context. Fields are named after transformers
//! 4's keys (`text_model.encoder.layers.{i}.self_attn.q_proj`, …); transformers 5's and SD single
//! files' layouts are mapped onto them by [`text_encoder_keys`].

use std::path::Path;

use burn::module::Module;
use burn::nn::attention::generate_autoregressive_mask;
use burn::nn::{Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig};
use burn::tensor::{backend::Backend, Int, Tensor};
use serde::Deserialize;

use super::config_file::{check_heads, TowerConfig};
pub use super::encoder::ClipActivation;
use super::encoder::{ClipEncoder, EncoderShape};
use crate::layer_norm::layer_norm;
use crate::weights::{
    component_weights, load_mapped, read_header, read_json, FileKey, Header, LoadError,
};

/// The fields of transformers' `CLIPTextConfig` (`text_encoder/config.json`) that the forward
/// pass depends on; other fields are ignored (transformers 5 writes `dtype` where 4 wrote
/// `torch_dtype`). An absent field means what it means to transformers: `CLIPTextConfig()`'s
/// default ([`ClipTextConfig::default`]), since a config file need not repeat default values.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct ClipTextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub max_position_embeddings: usize,
    pub hidden_act: ClipActivation,
    pub layer_norm_eps: f64,
}

/// transformers' `CLIPTextConfig()` defaults (the same in 4.46 and 5.24; a fixture test reads
/// them from transformers 5): CLIP ViT-B/32's text tower, *not* SD v1's ViT-L/14 one
/// ([`ClipTextConfig::sd15`]).
impl Default for ClipTextConfig {
    fn default() -> Self {
        Self {
            vocab_size: 49408,
            hidden_size: 512,
            intermediate_size: 2048,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 77,
            hidden_act: ClipActivation::QuickGelu,
            layer_norm_eps: 1e-5,
        }
    }
}

impl TowerConfig for ClipTextConfig {
    fn check(&self) -> Result<(), String> {
        check_heads(self.hidden_size, self.num_attention_heads)?;
        if self.vocab_size == 0 || self.max_position_embeddings == 0 || self.intermediate_size == 0
        {
            return Err(format!(
                "vocab_size {}, max_position_embeddings {} and intermediate_size {} must be positive",
                self.vocab_size, self.max_position_embeddings, self.intermediate_size
            ));
        }
        Ok(())
    }
}

impl ClipTextConfig {
    /// SD v1.5's text encoder (CLIP ViT-L/14).
    pub fn sd15() -> Self {
        Self {
            vocab_size: 49408,
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            max_position_embeddings: 77,
            hidden_act: ClipActivation::QuickGelu,
            layer_norm_eps: 1e-5,
        }
    }

    /// A model with this architecture and zero weights, to be overwritten by a checkpoint
    /// (zeros are cheaper than a random init of 123M parameters).
    pub fn init<B: Backend>(&self, device: &B::Device) -> ClipTextModel<B> {
        let h = self.hidden_size;
        assert!(
            h.is_multiple_of(self.num_attention_heads),
            "hidden_size {h} is not a multiple of num_attention_heads {}",
            self.num_attention_heads
        );
        let norm = || {
            LayerNormConfig::new(h)
                .with_epsilon(self.layer_norm_eps)
                .init(device)
        };
        let embedding = |n| {
            EmbeddingConfig::new(n, h)
                .with_initializer(Initializer::Zeros)
                .init(device)
        };
        ClipTextModel {
            text_model: ClipTextTransformer {
                embeddings: ClipTextEmbeddings {
                    token_embedding: embedding(self.vocab_size),
                    position_embedding: embedding(self.max_position_embeddings),
                },
                encoder: ClipEncoder::init(
                    &EncoderShape {
                        hidden: h,
                        intermediate: self.intermediate_size,
                        layers: self.num_hidden_layers,
                        heads: self.num_attention_heads,
                        activation: self.hidden_act,
                        layer_norm_eps: self.layer_norm_eps,
                    },
                    device,
                ),
                final_layer_norm: norm(),
            },
        }
    }
}

/// transformers' `CLIPTextModel`; the outer `text_model` level exists for the key names.
#[derive(Module, Debug)]
pub struct ClipTextModel<B: Backend> {
    pub text_model: ClipTextTransformer<B>,
}

#[derive(Module, Debug)]
pub struct ClipTextTransformer<B: Backend> {
    pub embeddings: ClipTextEmbeddings<B>,
    pub encoder: ClipEncoder<B>,
    pub final_layer_norm: LayerNorm<B>,
}

#[derive(Module, Debug)]
pub struct ClipTextEmbeddings<B: Backend> {
    pub token_embedding: Embedding<B>,
    pub position_embedding: Embedding<B>,
}

impl<B: Backend> ClipTextModel<B> {
    /// Builds the model from a transformers/diffusers folder (`text_encoder/` with
    /// `config.json` and `model.safetensors` or its fp16 variant), with transformers 4's keys
    /// or transformers 5's own (see [`text_encoder_keys`]).
    pub fn from_folder(folder: &Path, device: &B::Device) -> Result<Self, LoadError> {
        let path = folder.join("config.json");
        let config: ClipTextConfig = read_json(&path)?;
        config
            .check()
            .map_err(|message| LoadError::Layout { path, message })?;
        let file = component_weights(folder)?;
        let keys = text_encoder_keys(&read_header(&file)?, "");
        load_mapped(config.init(device), &file, &keys)
    }

    /// The last hidden state `[N, L, hidden]` (after the final layer norm) for token ids
    /// `[N, L]`, L ≤ max_position_embeddings. Causal attention over all L tokens, padding
    /// included, as SD v1 does (it passes no attention mask).
    pub fn forward(&self, input_ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        self.text_model.forward(input_ids)
    }
}

impl<B: Backend> ClipTextTransformer<B> {
    /// As [`ClipTextModel::forward`].
    pub fn forward(&self, input_ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let m = self;
        let [n, l] = input_ids.dims();
        let device = input_ids.device();
        let positions = Tensor::<B, 1, Int>::arange(0..l as i64, &device).reshape([1, l]);
        let x = m.embeddings.token_embedding.forward(input_ids)
            + m.embeddings.position_embedding.forward(positions);
        let mask = generate_autoregressive_mask::<B>(n, l, &device);
        layer_norm(&m.final_layer_norm, m.encoder.forward(x, Some(mask)))
    }
}

/// Where the text encoder's tensors (module keys `text_model.…`) are in a file whose CLIP keys
/// start with `prefix` (`""` in a `text_encoder/` folder, `cond_stage_model.transformer.` in an
/// SD v1 single file).
///
/// transformers 4's `CLIPTextModel` wraps the transformer in a `text_model` submodule, so its
/// keys read `text_model.embeddings.…`. transformers 5 dropped the wrapper: its state dict (what
/// `save_pretrained(save_original_format=False)`, PEFT-loaded or offloaded saves and plain
/// `save_file(model.state_dict())` write) reads `embeddings.…`, although its default
/// `save_pretrained` still restores transformers 4's keys. Some SD v1 single files likewise come
/// from transformers versions without the wrapper. The file's own token embedding key tells
/// which layout it has; an encoder found under neither is reported with transformers 4's keys.
pub fn text_encoder_keys(header: &Header, prefix: &str) -> impl Fn(&str) -> FileKey {
    let bare = !header.contains_key(&format!(
        "{prefix}text_model.embeddings.token_embedding.weight"
    )) && header.contains_key(&format!("{prefix}embeddings.token_embedding.weight"));
    let prefix = prefix.to_string();
    move |key: &str| {
        let key = if bare {
            key.strip_prefix("text_model.").unwrap_or(key)
        } else {
            key
        };
        FileKey::plain(format!("{prefix}{key}"))
    }
}
