//! BERT's encoder (transformers' `BertModel` without its pooler): the text side of ImageReward
//! (BLIP's BERT-base) and of the prompt-diversity metric (MiniLM, a 6-layer BERT).
//!
//! Post-LN blocks: `x = LN(x + attn(x))`, then `x = LN(x + W₂·gelu(W₁·x))`; embeddings are the
//! sum of word, absolute position and (where the model has them) token-type embeddings, layer
//! normed. Padding is masked out of the keys; every position still gets an output. BLIP's BERT
//! (ImageReward's `med.py`) has no token-type embeddings (a file without them loads without
//! them) and, in each layer after self-attention, a post-LN cross-attention to the image tokens
//! (`add_cross_attention`, keys and values from `encoder_width`), used when a context is given.
//!
//! Keys are transformers'; a file whose keys carry a prefix (`bert.` of the task heads,
//! `blip.text_encoder.` of ImageReward) is read from below it.

pub mod tokenizer;

use std::path::Path;

use crate::gelu::gelu;
use burn::module::Module;
use burn::nn::{
    Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig,
};
use burn::tensor::{backend::Backend, Bool, DType, Int, Tensor};
use serde::Deserialize;

use crate::attention::multi_head_attention;
use crate::layer_norm::layer_norm;
use crate::precision::to_dtype;
pub use tokenizer::{BertTokenizer, EncodedBatch};

use crate::linear;
use crate::weights::{component_weights, load_mapped, read_json, read_tensors, FileKey, LoadError};

/// The fields of transformers' `BertConfig` the forward pass depends on; absent fields take
/// `BertConfig()`'s defaults (BERT-base).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub position_embedding_type: String,
    /// Cross-attention in every layer (BLIP's multimodal encoder).
    pub add_cross_attention: bool,
    /// The width of the cross-attended tokens (BLIP's `encoder_width`; none: `hidden_size`).
    pub encoder_width: Option<usize>,
}

impl Default for BertConfig {
    fn default() -> Self {
        Self {
            vocab_size: 30522,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: "gelu".into(),
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            position_embedding_type: "absolute".into(),
            add_cross_attention: false,
            encoder_width: None,
        }
    }
}

impl BertConfig {
    /// What this encoder cannot run, in words.
    fn check(&self) -> Result<(), String> {
        if self.hidden_act != "gelu" {
            return Err(format!(
                "hidden_act {:?}: only \"gelu\" (exact) is implemented",
                self.hidden_act
            ));
        }
        if self.position_embedding_type != "absolute" {
            return Err(format!(
                "position_embedding_type {:?}: only \"absolute\" is implemented",
                self.position_embedding_type
            ));
        }
        if self.num_attention_heads == 0
            || self.hidden_size == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(format!(
                "hidden_size {} does not split into num_attention_heads {} heads",
                self.hidden_size, self.num_attention_heads
            ));
        }
        Ok(())
    }

    /// An encoder with this architecture and zero weights, to be overwritten by a checkpoint.
    pub fn init<B: Backend>(&self, device: &B::Device) -> BertModel<B> {
        let h = self.hidden_size;
        let norm = || {
            LayerNormConfig::new(h)
                .with_epsilon(self.layer_norm_eps)
                .init(device)
        };
        let linear = |i, o| {
            LinearConfig::new(i, o)
                .with_initializer(Initializer::Zeros)
                .init(device)
        };
        let embedding = |n| {
            EmbeddingConfig::new(n, h)
                .with_initializer(Initializer::Zeros)
                .init(device)
        };
        BertModel {
            embeddings: BertEmbeddings {
                word_embeddings: embedding(self.vocab_size),
                position_embeddings: embedding(self.max_position_embeddings),
                token_type_embeddings: (self.type_vocab_size > 0)
                    .then(|| embedding(self.type_vocab_size)),
                layer_norm: norm(),
            },
            layers: (0..self.num_hidden_layers)
                .map(|_| BertLayer {
                    query: linear(h, h),
                    key: linear(h, h),
                    value: linear(h, h),
                    attention_out: linear(h, h),
                    attention_norm: norm(),
                    intermediate: linear(h, self.intermediate_size),
                    output: linear(self.intermediate_size, h),
                    output_norm: norm(),
                    cross: self.add_cross_attention.then(|| {
                        let width = self.encoder_width.unwrap_or(h);
                        BertCrossAttention {
                            query: linear(h, h),
                            key: linear(width, h),
                            value: linear(width, h),
                            out: linear(h, h),
                            norm: norm(),
                        }
                    }),
                    heads: self.num_attention_heads,
                })
                .collect(),
        }
    }
}

#[derive(Module, Debug)]
pub struct BertModel<B: Backend> {
    pub embeddings: BertEmbeddings<B>,
    pub layers: Vec<BertLayer<B>>,
}

#[derive(Module, Debug)]
pub struct BertEmbeddings<B: Backend> {
    pub word_embeddings: Embedding<B>,
    pub position_embeddings: Embedding<B>,
    pub token_type_embeddings: Option<Embedding<B>>,
    pub layer_norm: LayerNorm<B>,
}

/// One post-LN block (transformers' `BertLayer`: attention, intermediate, output).
#[derive(Module, Debug)]
pub struct BertLayer<B: Backend> {
    pub query: Linear<B>,
    pub key: Linear<B>,
    pub value: Linear<B>,
    pub attention_out: Linear<B>,
    pub attention_norm: LayerNorm<B>,
    pub intermediate: Linear<B>,
    pub output: Linear<B>,
    pub output_norm: LayerNorm<B>,
    pub cross: Option<BertCrossAttention<B>>,
    pub heads: usize,
}

/// BLIP's cross-attention sublayer: queries from the text, keys and values from the context.
#[derive(Module, Debug)]
pub struct BertCrossAttention<B: Backend> {
    pub query: Linear<B>,
    pub key: Linear<B>,
    pub value: Linear<B>,
    pub out: Linear<B>,
    pub norm: LayerNorm<B>,
}

/// Where [`BertModel`]'s tensors are in a file whose BERT keys start with `prefix`.
pub fn keys(prefix: &str) -> impl Fn(&str) -> FileKey + '_ {
    move |key: &str| bert_key(prefix, key)
}

/// Where a module key sits in transformers' naming, below `prefix`.
fn bert_key(prefix: &str, key: &str) -> FileKey {
    let mapped = if let Some(rest) = key.strip_prefix("embeddings.layer_norm.") {
        format!("embeddings.LayerNorm.{rest}")
    } else if let Some(rest) = key.strip_prefix("layers.") {
        let (index, inner) = rest.split_once('.').unwrap_or((rest, ""));
        let (module, param) = inner.split_once('.').unwrap_or((inner, ""));
        let name = match module {
            "query" | "key" | "value" => format!("attention.self.{module}"),
            "attention_out" => "attention.output.dense".into(),
            "attention_norm" => "attention.output.LayerNorm".into(),
            "intermediate" => "intermediate.dense".into(),
            "output" => "output.dense".into(),
            "output_norm" => "output.LayerNorm".into(),
            "cross" => {
                let (sub, param) = param.split_once('.').unwrap_or((param, ""));
                let sub = match sub {
                    "query" | "key" | "value" => format!("self.{sub}"),
                    "out" => "output.dense".into(),
                    "norm" => "output.LayerNorm".into(),
                    other => other.into(),
                };
                return FileKey::plain(format!(
                    "{prefix}encoder.layer.{index}.crossattention.{sub}.{param}"
                ));
            }
            other => other.into(),
        };
        format!("encoder.layer.{index}.{name}.{param}")
    } else {
        key.to_string()
    };
    FileKey::plain(format!("{prefix}{mapped}"))
}

impl<B: Backend> BertModel<B> {
    /// The encoder of a transformers folder (`config.json`, `model.safetensors`), whatever
    /// prefix its keys carry (`bert.`, none, …).
    ///
    /// # Errors
    /// Missing or unreadable files, a config this encoder cannot run, tensors missing or
    /// mis-shaped (named by key).
    pub fn from_folder(folder: &Path, device: &B::Device) -> Result<(Self, BertConfig), LoadError> {
        let path = folder.join("config.json");
        let config: BertConfig = read_json(&path)?;
        Self::load(config, &component_weights(folder)?, None, device)
    }

    /// The encoder of `config` from a weights file (safetensors, or a torch pickle such as
    /// ImageReward.pt) whose BERT keys start with `prefix` (none: found from the word
    /// embeddings' key). A file without token-type embeddings loads without them, whatever
    /// `type_vocab_size` says (BLIP's BERT).
    ///
    /// # Errors
    /// A config this encoder cannot run; an unreadable file; tensors missing or mis-shaped.
    pub fn load(
        mut config: BertConfig,
        file: &Path,
        prefix: Option<&str>,
        device: &B::Device,
    ) -> Result<(Self, BertConfig), LoadError> {
        config.check().map_err(|message| LoadError::Layout {
            path: file.to_path_buf(),
            message,
        })?;
        let (header, _) = read_tensors(file)?;
        let prefix = match prefix {
            Some(p) => p.to_string(),
            None => header
                .keys()
                .find_map(|k| k.strip_suffix("embeddings.word_embeddings.weight"))
                .unwrap_or("")
                .to_string(),
        };
        if !header.contains_key(&format!("{prefix}embeddings.token_type_embeddings.weight")) {
            config.type_vocab_size = 0;
        }
        let model = load_mapped(config.init(device), file, &|k: &str| bert_key(&prefix, k))?;
        Ok((model, config))
    }

    /// The last hidden states `[N, L, hidden]` of token ids `[N, L]` (token type 0) with
    /// `padding` `[N, L]` true at padded positions, which no position attends to.
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        padding: Tensor<B, 2, Bool>,
    ) -> Tensor<B, 3> {
        self.forward_with_context(input_ids, padding, None)
    }

    /// [`BertModel::forward`] with `context` `[N, M, encoder_width]` (image tokens, none
    /// masked) cross-attended by the layers that have cross-attention.
    ///
    /// Runs in the precision of its weights (see [`crate::cast_module`]): the context is cast
    /// to it, the layer norms run in f32, and the hidden states come back in f32.
    pub fn forward_with_context(
        &self,
        input_ids: Tensor<B, 2, Int>,
        padding: Tensor<B, 2, Bool>,
        context: Option<Tensor<B, 3>>,
    ) -> Tensor<B, 3> {
        let [n, l] = input_ids.dims();
        let device = input_ids.device();
        let e = &self.embeddings;
        let positions = Tensor::<B, 1, Int>::arange(0..l as i64, &device).reshape([1, l]);
        let mut x = e.word_embeddings.forward(input_ids) + e.position_embeddings.forward(positions);
        if let Some(types) = &e.token_type_embeddings {
            x = x + types.forward(Tensor::<B, 2, Int>::zeros([1, l], &device));
        }
        let mut x = layer_norm(&e.layer_norm, x);
        let context = context.map(|c| to_dtype(c, x.dtype()));
        let mask = padding.reshape([n, 1, l]).expand([n, l, l]);
        for layer in &self.layers {
            let attended = multi_head_attention(
                linear::forward(&layer.query, x.clone()),
                linear::forward(&layer.key, x.clone()),
                linear::forward(&layer.value, x.clone()),
                layer.heads,
                Some(mask.clone()),
            );
            x = layer_norm(
                &layer.attention_norm,
                x + linear::forward(&layer.attention_out, attended),
            );
            if let (Some(cross), Some(context)) = (&layer.cross, &context) {
                let attended = multi_head_attention(
                    linear::forward(&cross.query, x.clone()),
                    linear::forward(&cross.key, context.clone()),
                    linear::forward(&cross.value, context.clone()),
                    layer.heads,
                    None,
                );
                x = layer_norm(&cross.norm, x + linear::forward(&cross.out, attended));
            }
            let hidden = gelu(linear::forward(&layer.intermediate, x.clone()));
            x = layer_norm(
                &layer.output_norm,
                x + linear::forward(&layer.output, hidden),
            );
        }
        to_dtype(x, DType::F32)
    }
}
