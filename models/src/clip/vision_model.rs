//! CLIP's vision tower with its projection (transformers' `CLIPVisionModelWithProjection`, and
//! the vision half of `CLIPModel`): what the LAION aesthetic predictor and CLIP score embed
//! images with.
//!
//! Patches of `patch_size` pixels (a convolution without bias) plus a learnt class token and
//! position embeddings, a layer norm *before* the encoder (`pre_layrnorm`, transformers'
//! spelling), the shared pre-LN encoder without mask, then the class token's output through
//! `post_layernorm` and a bias-free projection: the image embedding.

use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{
    Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig,
};
use burn::tensor::{backend::Backend, Int, Tensor};
use serde::Deserialize;

use super::config_file::{check_heads, tower_config, TowerConfig};
use super::encoder::{ClipActivation, ClipEncoder, EncoderShape};
use crate::conv::conv2d;
use crate::layer_norm::layer_norm;
use crate::linear;
use crate::per_channel::per_channel;
use crate::precision::{to_dtype, to_precision_of};
use crate::weights::{
    check_mapped, component_weights, load_mapped, read_header, FileKey, FileReport, LoadError,
};

/// CLIP's per-channel pixel mean and std (OpenAI's; CLIPImageProcessor's defaults), written as
/// published.
#[allow(clippy::excessive_precision)]
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
#[allow(clippy::excessive_precision)]
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// Images `[N, 3, H, W]` in [0, 1] normalised with CLIP's mean and std.
pub fn clip_normalise<B: Backend>(images: Tensor<B, 4>) -> Tensor<B, 4> {
    normalise(images, CLIP_MEAN, CLIP_STD)
}

/// Images `[N, 3, H, W]` with each channel's `mean` subtracted and divided by its `std`
/// (torchvision's `Normalize`).
pub fn normalise<B: Backend>(images: Tensor<B, 4>, mean: [f32; 3], std: [f32; 3]) -> Tensor<B, 4> {
    let device = images.device();
    let n = images.dims()[0];
    let column = |v: [f32; 3]| per_channel(Tensor::<B, 1>::from_floats(v, &device), n);
    (images - column(mean)) / column(std)
}

/// The fields of transformers' `CLIPVisionConfig` the forward pass depends on; absent fields
/// take `CLIPVisionConfig()`'s defaults (ViT-B/32), as transformers reads them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct ClipVisionConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub projection_dim: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_channels: usize,
    pub image_size: usize,
    pub patch_size: usize,
    pub hidden_act: ClipActivation,
    pub layer_norm_eps: f64,
    /// Whether the patch convolution has a bias (BLIP's ViT; not CLIP's).
    #[serde(skip)]
    pub patch_bias: bool,
    /// Whether a layer norm precedes the encoder (CLIP's `pre_layrnorm`; not BLIP's).
    #[serde(skip)]
    pub pre_norm: bool,
    /// Whether the class token's output is projected (CLIP's; BLIP's ViT has no projection).
    #[serde(skip)]
    pub projection: bool,
}

impl Default for ClipVisionConfig {
    fn default() -> Self {
        Self {
            hidden_size: 768,
            intermediate_size: 3072,
            projection_dim: 512,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: 224,
            patch_size: 32,
            hidden_act: ClipActivation::QuickGelu,
            layer_norm_eps: 1e-5,
            patch_bias: false,
            pre_norm: true,
            projection: true,
        }
    }
}

impl TowerConfig for ClipVisionConfig {
    fn check(&self) -> Result<(), String> {
        check_heads(self.hidden_size, self.num_attention_heads)?;
        if self.patch_size == 0 || self.image_size < self.patch_size || self.num_channels == 0 {
            return Err(format!(
                "image_size {} in patches of {} ({} channels) makes no patch",
                self.image_size, self.patch_size, self.num_channels
            ));
        }
        if self.intermediate_size == 0 || self.projection_dim == 0 {
            return Err("intermediate_size and projection_dim must be positive".into());
        }
        Ok(())
    }
}

impl ClipVisionConfig {
    /// CLIP ViT-L/14 (openai/clip-vit-large-patch14): the aesthetic predictor's tower.
    pub fn vit_l14() -> Self {
        Self {
            hidden_size: 1024,
            intermediate_size: 4096,
            projection_dim: 768,
            num_hidden_layers: 24,
            num_attention_heads: 16,
            num_channels: 3,
            image_size: 224,
            patch_size: 14,
            hidden_act: ClipActivation::QuickGelu,
            layer_norm_eps: 1e-5,
            ..Self::default()
        }
    }

    /// The vision config of a transformers CLIP folder's `config.json` (a `CLIPModel`'s or a
    /// `CLIPVisionModelWithProjection`'s; see [`tower_config`]).
    ///
    /// # Errors
    /// An unreadable or malformed file.
    pub fn from_file(path: &Path) -> Result<Self, LoadError> {
        let (mut config, projection) = tower_config::<Self>(path, "vision")?;
        config.projection_dim = projection;
        Ok(config)
    }

    /// Patches per side.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// A model with this architecture and zero weights, to be overwritten by a checkpoint.
    pub fn init<B: Backend>(&self, device: &B::Device) -> ClipVisionModel<B> {
        let h = self.hidden_size;
        let norm = || {
            LayerNormConfig::new(h)
                .with_epsilon(self.layer_norm_eps)
                .init(device)
        };
        let positions = self.grid() * self.grid() + 1;
        ClipVisionModel {
            vision_model: ClipVisionTransformer {
                embeddings: ClipVisionEmbeddings {
                    class_embedding: Param::from_tensor(Tensor::zeros([h], device)),
                    patch_embedding: Conv2dConfig::new(
                        [self.num_channels, h],
                        [self.patch_size, self.patch_size],
                    )
                    .with_stride([self.patch_size, self.patch_size])
                    .with_bias(self.patch_bias)
                    .with_initializer(Initializer::Zeros)
                    .init(device),
                    position_embedding: EmbeddingConfig::new(positions, h)
                        .with_initializer(Initializer::Zeros)
                        .init(device),
                },
                pre_layrnorm: self.pre_norm.then(norm),
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
                post_layernorm: norm(),
            },
            visual_projection: self.projection.then(|| {
                LinearConfig::new(h, self.projection_dim)
                    .with_bias(false)
                    .with_initializer(Initializer::Zeros)
                    .init(device)
            }),
        }
    }
}

/// The tower and its projection, named as transformers' keys.
#[derive(Module, Debug)]
pub struct ClipVisionModel<B: Backend> {
    pub vision_model: ClipVisionTransformer<B>,
    pub visual_projection: Option<Linear<B>>,
}

#[derive(Module, Debug)]
pub struct ClipVisionTransformer<B: Backend> {
    pub embeddings: ClipVisionEmbeddings<B>,
    pub pre_layrnorm: Option<LayerNorm<B>>,
    pub encoder: ClipEncoder<B>,
    pub post_layernorm: LayerNorm<B>,
}

#[derive(Module, Debug)]
pub struct ClipVisionEmbeddings<B: Backend> {
    pub class_embedding: Param<Tensor<B, 1>>,
    pub patch_embedding: Conv2d<B>,
    pub position_embedding: Embedding<B>,
}

impl<B: Backend> ClipVisionModel<B> {
    /// The tower of a transformers CLIP folder (`config.json` and `model.safetensors`, saved
    /// from a `CLIPModel` or a `CLIPVisionModelWithProjection`; a CLIPModel's text tower is
    /// not read).
    ///
    /// # Errors
    /// Missing or unreadable files, or tensors missing or mis-shaped (named by key).
    pub fn from_folder(folder: &Path, device: &B::Device) -> Result<Self, LoadError> {
        let config = ClipVisionConfig::from_file(&folder.join("config.json"))?;
        let file = component_weights(folder)?;
        load_mapped(config.init(device), &file, &|k: &str| FileKey::plain(k))
    }

    /// Compares a CLIP folder's weights with the tower its config describes, from the file's
    /// header only (`bench doctor`): no tensor is read or allocated.
    ///
    /// # Errors
    /// Missing or unreadable config or weights.
    pub fn check_folder(
        folder: &Path,
        device: &B::Device,
    ) -> Result<(ClipVisionConfig, FileReport), LoadError> {
        let config = ClipVisionConfig::from_file(&folder.join("config.json"))?;
        let file = component_weights(folder)?;
        let header = read_header(&file)?;
        let report = check_mapped(
            &config.init::<B>(device),
            &file,
            &header,
            "vision_model.",
            &|k: &str| FileKey::plain(k),
        );
        Ok((config, report))
    }

    /// Image embeddings `[N, projection_dim]` (not normalised) of pixel values `[N, C, S, S]`
    /// already resized to the tower's image size and normalised with CLIP's mean and std: the
    /// class token's output, layer normed, projected (unprojected for a tower without one).
    /// A half-precision tower (see [`crate::cast_module`]) computes in its weights' precision,
    /// its norms in f32, and returns the pixels' dtype.
    pub fn forward(&self, pixels: Tensor<B, 4>) -> Tensor<B, 2> {
        let out_dtype = pixels.dtype();
        let x = self.encoded(pixels);
        let [n, _, h] = x.dims();
        let pooled = layer_norm(
            &self.vision_model.post_layernorm,
            x.slice([0..n, 0..1, 0..h]).reshape([n, h]),
        );
        let embedding = match &self.visual_projection {
            Some(projection) => linear::forward(projection, pooled),
            None => pooled,
        };
        to_dtype(embedding, out_dtype)
    }

    /// Every token's output `[N, 1 + patches, hidden]` after the final layer norm (BLIP's image
    /// embeddings, which ImageReward's text encoder attends to), in the weights' precision:
    /// the text encoder, held in the same precision, reads them as they are.
    pub fn tokens(&self, pixels: Tensor<B, 4>) -> Tensor<B, 3> {
        layer_norm(&self.vision_model.post_layernorm, self.encoded(pixels))
    }

    /// The class token's output before the final norm `[N, hidden]` (DINO's features as
    /// DreamSim reads them: a hook on the last block).
    pub fn class_token_before_norm(&self, pixels: Tensor<B, 4>) -> Tensor<B, 2> {
        let out_dtype = pixels.dtype();
        let x = self.encoded(pixels);
        let [n, _, h] = x.dims();
        to_dtype(x.slice([0..n, 0..1, 0..h]).reshape([n, h]), out_dtype)
    }

    /// The encoder's output before the final norm, in the weights' precision.
    fn encoded(&self, pixels: Tensor<B, 4>) -> Tensor<B, 3> {
        let m = &self.vision_model;
        let patch = &m.embeddings.patch_embedding;
        let pixels = to_precision_of(pixels, &patch.weight.val());
        let patches = conv2d(patch, pixels); // [N, H, g, g]
        let [n, h, gh, gw] = patches.dims();
        let patches = patches.reshape([n, h, gh * gw]).swap_dims(1, 2);
        let class = m
            .embeddings
            .class_embedding
            .val()
            .reshape([1, 1, h])
            .expand([n, 1, h]);
        let tokens = Tensor::cat(vec![class, patches], 1);
        let l = gh * gw + 1;
        let device = tokens.device();
        let positions = Tensor::<B, 1, Int>::arange(0..l as i64, &device).reshape([1, l]);
        let x = tokens + m.embeddings.position_embedding.forward(positions);
        let x = match &m.pre_layrnorm {
            Some(norm) => layer_norm(norm, x),
            None => x,
        };
        m.encoder.forward(x, None)
    }
}
