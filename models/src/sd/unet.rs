//! SD v1's denoiser (diffusers' `UNet2DConditionModel`): ε̂(x_t, t, text context).
//!
//! Down blocks (resnets, optionally cross-attention transformers, a stride-2 conv), a mid block,
//! and up blocks that concatenate the down path's activations (skip connections) before each
//! resnet. Only the SD v1/v2-style architecture is built (positional time embedding, conv or no
//! projection variants refused by name); field names follow diffusers' keys.

use std::path::Path;

use crate::flex_kernels::contiguous;
use crate::gelu::gelu;
use crate::silu::silu;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{Dropout, DropoutConfig, GroupNorm, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::{backend::Backend, Tensor, TensorData};
use serde::Deserialize;

use super::blocks::{
    conv, group_norm, group_norm_forward, group_norm_silu, linear, Downsample2D, ResnetBlock2D,
    Upsample2D,
};
use super::lora::{
    AttentionShape, BlockLayout, LoraAttention, LoraBlock, LoraLayout, LoraTransformer, UNetLora,
};
use crate::attention::multi_head_attention;
use crate::conv::conv2d;
use crate::layer_norm::layer_norm;
use crate::linear;
use crate::precision::{to_dtype, to_precision_of};
use crate::weights::{component_weights, load_safetensors, read_json, LoadError};

/// An int or one int per block, as diffusers' configs allow.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum PerBlock {
    Same(usize),
    Each(Vec<usize>),
}

impl PerBlock {
    fn get(&self, i: usize) -> usize {
        match self {
            Self::Same(v) => *v,
            Self::Each(v) => v[i],
        }
    }
}

/// The fields of diffusers' `UNet2DConditionModel` config (`unet/config.json`) used here;
/// [`UNetConfig::check`] refuses the variants this port does not build.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UNetConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub block_out_channels: Vec<usize>,
    pub layers_per_block: usize,
    pub down_block_types: Vec<String>,
    pub up_block_types: Vec<String>,
    pub cross_attention_dim: usize,
    /// diffusers' historical naming: for SD v1 this is the number of heads, not their width.
    pub attention_head_dim: PerBlock,
    #[serde(default)]
    pub num_attention_heads: Option<PerBlock>,
    #[serde(default = "default_groups")]
    pub norm_num_groups: usize,
    #[serde(default = "default_eps")]
    pub norm_eps: f64,
    #[serde(default = "default_true")]
    pub flip_sin_to_cos: bool,
    #[serde(default)]
    pub freq_shift: usize,
    #[serde(default)]
    pub use_linear_projection: bool,
    #[serde(default)]
    pub center_input_sample: bool,
    #[serde(default = "default_mid")]
    pub mid_block_type: Option<String>,
    #[serde(default)]
    pub class_embed_type: Option<String>,
    #[serde(default)]
    pub addition_embed_type: Option<String>,
    #[serde(default = "default_one")]
    pub transformer_layers_per_block: PerBlock,
}

fn default_groups() -> usize {
    32
}
fn default_eps() -> f64 {
    1e-5
}
fn default_true() -> bool {
    true
}
fn default_mid() -> Option<String> {
    Some("UNetMidBlock2DCrossAttn".into())
}
fn default_one() -> PerBlock {
    PerBlock::Same(1)
}

const CROSS_DOWN: &str = "CrossAttnDownBlock2D";
const PLAIN_DOWN: &str = "DownBlock2D";
const CROSS_UP: &str = "CrossAttnUpBlock2D";
const PLAIN_UP: &str = "UpBlock2D";

impl UNetConfig {
    /// SD v1.5's UNet.
    pub fn sd15() -> Self {
        Self {
            in_channels: 4,
            out_channels: 4,
            block_out_channels: vec![320, 640, 1280, 1280],
            layers_per_block: 2,
            down_block_types: [CROSS_DOWN, CROSS_DOWN, CROSS_DOWN, PLAIN_DOWN]
                .map(String::from)
                .to_vec(),
            up_block_types: [PLAIN_UP, CROSS_UP, CROSS_UP, CROSS_UP]
                .map(String::from)
                .to_vec(),
            cross_attention_dim: 768,
            attention_head_dim: PerBlock::Same(8),
            num_attention_heads: None,
            norm_num_groups: 32,
            norm_eps: 1e-5,
            flip_sin_to_cos: true,
            freq_shift: 0,
            use_linear_projection: false,
            center_input_sample: false,
            mid_block_type: default_mid(),
            class_embed_type: None,
            addition_embed_type: None,
            transformer_layers_per_block: PerBlock::Same(1),
        }
    }

    /// Why this config cannot be built, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        let n = self.block_out_channels.len();
        if self.down_block_types.len() != n || self.up_block_types.len() != n {
            return Err(format!(
                "{n} block_out_channels but {} down and {} up blocks",
                self.down_block_types.len(),
                self.up_block_types.len()
            ));
        }
        if let Some(t) = self
            .down_block_types
            .iter()
            .find(|t| *t != CROSS_DOWN && *t != PLAIN_DOWN)
            .or_else(|| {
                self.up_block_types
                    .iter()
                    .find(|t| *t != CROSS_UP && *t != PLAIN_UP)
            })
        {
            return Err(format!("unsupported UNet block type {t}"));
        }
        let unsupported = [
            (!self.flip_sin_to_cos, "flip_sin_to_cos = false"),
            (self.use_linear_projection, "use_linear_projection = true"),
            (self.center_input_sample, "center_input_sample = true"),
            (self.class_embed_type.is_some(), "a class embedding"),
            (self.addition_embed_type.is_some(), "an addition embedding"),
            (
                self.mid_block_type.as_deref() != Some("UNetMidBlock2DCrossAttn"),
                "a mid block other than UNetMidBlock2DCrossAttn",
            ),
            (
                (0..n).any(|i| self.transformer_layers_per_block.get(i) != 1),
                "transformer_layers_per_block ≠ 1",
            ),
        ];
        match unsupported.iter().find(|(bad, _)| *bad) {
            Some((_, what)) => Err(format!("unsupported UNet config: {what}")),
            None => Ok(()),
        }
    }

    fn heads(&self, i: usize) -> usize {
        self.num_attention_heads
            .as_ref()
            .unwrap_or(&self.attention_head_dim)
            .get(i)
    }

    /// A UNet with this architecture and zero weights, to be overwritten by a checkpoint.
    pub fn init<B: Backend>(&self, device: &B::Device) -> UNet2DConditionModel<B> {
        if let Err(e) = self.check() {
            panic!("{e}");
        }
        let ch = &self.block_out_channels;
        let n = ch.len();
        let (g, eps) = (self.norm_num_groups, self.norm_eps);
        let temb = 4 * ch[0];
        let resnet = |i, o| ResnetBlock2D::new(i, o, Some(temb), g, eps, device);
        let transformer =
            |c, heads| Transformer2DModel::new(c, heads, self.cross_attention_dim, g, device);

        let down_blocks = (0..n)
            .map(|i| {
                let c_in = if i == 0 { ch[0] } else { ch[i - 1] };
                let cross = self.down_block_types[i] == CROSS_DOWN;
                UNetBlock {
                    resnets: (0..self.layers_per_block)
                        .map(|j| resnet(if j == 0 { c_in } else { ch[i] }, ch[i]))
                        .collect(),
                    attentions: (0..self.layers_per_block)
                        .filter(|_| cross)
                        .map(|_| transformer(ch[i], self.heads(i)))
                        .collect(),
                    downsamplers: (i + 1 < n)
                        .then(|| Downsample2D::new(ch[i], false, device))
                        .into_iter()
                        .collect(),
                    upsamplers: vec![],
                }
            })
            .collect();

        let rev: Vec<usize> = ch.iter().rev().copied().collect();
        let rev_heads: Vec<usize> = (0..n).rev().map(|i| self.heads(i)).collect();
        let up_blocks = (0..n)
            .map(|i| {
                let prev_out = if i == 0 { rev[0] } else { rev[i - 1] };
                let out = rev[i];
                let input = rev[(i + 1).min(n - 1)];
                let layers = self.layers_per_block + 1;
                let cross = self.up_block_types[i] == CROSS_UP;
                UNetBlock {
                    resnets: (0..layers)
                        .map(|j| {
                            let skip = if j + 1 == layers { input } else { out };
                            let res_in = if j == 0 { prev_out } else { out };
                            resnet(res_in + skip, out)
                        })
                        .collect(),
                    attentions: (0..layers)
                        .filter(|_| cross)
                        .map(|_| transformer(out, rev_heads[i]))
                        .collect(),
                    downsamplers: vec![],
                    upsamplers: (i + 1 < n)
                        .then(|| Upsample2D::new(out, device))
                        .into_iter()
                        .collect(),
                }
            })
            .collect();

        let last = rev[0];
        UNet2DConditionModel {
            conv_in: conv(self.in_channels, ch[0], 3, 1, 1, device),
            time_embedding: TimestepEmbedding {
                linear_1: linear(ch[0], temb, true, device),
                linear_2: linear(temb, temb, true, device),
            },
            down_blocks,
            mid_block: UNetBlock {
                resnets: vec![resnet(last, last), resnet(last, last)],
                attentions: vec![transformer(last, self.heads(n - 1))],
                downsamplers: vec![],
                upsamplers: vec![],
            },
            up_blocks,
            conv_norm_out: group_norm(g, ch[0], eps, device),
            conv_out: conv(ch[0], self.out_channels, 3, 1, 1, device),
            time_proj_dim: ch[0],
            freq_shift: self.freq_shift,
        }
    }
}

#[derive(Module, Debug)]
pub struct UNet2DConditionModel<B: Backend> {
    pub conv_in: Conv2d<B>,
    pub time_embedding: TimestepEmbedding<B>,
    pub down_blocks: Vec<UNetBlock<B>>,
    pub mid_block: UNetBlock<B>,
    pub up_blocks: Vec<UNetBlock<B>>,
    pub conv_norm_out: GroupNorm<B>,
    pub conv_out: Conv2d<B>,
    /// Width of the sinusoidal timestep features (`block_out_channels[0]`).
    #[module(skip)]
    pub time_proj_dim: usize,
    #[module(skip)]
    pub freq_shift: usize,
}

/// `linear_1 → SiLU → linear_2` on the sinusoidal timestep features.
#[derive(Module, Debug)]
pub struct TimestepEmbedding<B: Backend> {
    pub linear_1: Linear<B>,
    pub linear_2: Linear<B>,
}

/// Any of diffusers' down, mid or up blocks: resnets, each followed by its transformer when the
/// block has cross-attention, then the resampler (at most one of the two lists is non-empty).
#[derive(Module, Debug)]
pub struct UNetBlock<B: Backend> {
    pub resnets: Vec<ResnetBlock2D<B>>,
    pub attentions: Vec<Transformer2DModel<B>>,
    pub downsamplers: Vec<Downsample2D<B>>,
    pub upsamplers: Vec<Upsample2D<B>>,
}

/// Group norm, 1×1 conv in, transformer blocks over the H·W positions, 1×1 conv out, residual.
#[derive(Module, Debug)]
pub struct Transformer2DModel<B: Backend> {
    pub norm: GroupNorm<B>,
    pub proj_in: Conv2d<B>,
    pub transformer_blocks: Vec<BasicTransformerBlock<B>>,
    pub proj_out: Conv2d<B>,
}

/// Pre-LN self-attention, cross-attention to the text, GEGLU feed-forward; each residual.
#[derive(Module, Debug)]
pub struct BasicTransformerBlock<B: Backend> {
    pub norm1: LayerNorm<B>,
    pub attn1: Attention<B>,
    pub norm2: LayerNorm<B>,
    pub attn2: Attention<B>,
    pub norm3: LayerNorm<B>,
    pub ff: FeedForward<B>,
}

/// Multi-head attention without q/k/v biases (`to_out.0` has one).
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    pub to_q: Linear<B>,
    pub to_k: Linear<B>,
    pub to_v: Linear<B>,
    pub to_out: Vec<Linear<B>>,
    #[module(skip)]
    pub heads: usize,
}

/// diffusers' `FeedForward`: `net.0` GEGLU, `net.1` dropout, `net.2` the output projection;
/// the tuple keeps those key indices.
#[derive(Module, Debug)]
pub struct FeedForward<B: Backend> {
    pub net: (GeGlu<B>, Dropout, Linear<B>),
}

/// `a · GELU(gate)` with `[a, gate]` the two halves of one projection.
#[derive(Module, Debug)]
pub struct GeGlu<B: Backend> {
    pub proj: Linear<B>,
}

impl<B: Backend> Transformer2DModel<B> {
    fn new(c: usize, heads: usize, context_dim: usize, groups: usize, device: &B::Device) -> Self {
        let norm = || LayerNormConfig::new(c).init(device);
        let attention = |kv_dim| Attention {
            to_q: linear(c, c, false, device),
            to_k: linear(kv_dim, c, false, device),
            to_v: linear(kv_dim, c, false, device),
            to_out: vec![linear(c, c, true, device)],
            heads,
        };
        Self {
            norm: group_norm(groups, c, 1e-6, device),
            proj_in: conv(c, c, 1, 1, 0, device),
            transformer_blocks: vec![BasicTransformerBlock {
                norm1: norm(),
                attn1: attention(c),
                norm2: norm(),
                attn2: attention(context_dim),
                norm3: norm(),
                ff: FeedForward {
                    net: (
                        GeGlu {
                            proj: linear(c, 8 * c, true, device),
                        },
                        DropoutConfig::new(0.0).init(),
                        linear(4 * c, c, true, device),
                    ),
                },
            }],
            proj_out: conv(c, c, 1, 1, 0, device),
        }
    }

    fn forward(
        &self,
        x: Tensor<B, 4>,
        context: Tensor<B, 3>,
        lora: Option<(&LoraTransformer<B>, f64)>,
    ) -> Tensor<B, 4> {
        let [n, c, h, w] = x.dims();
        // Laid out token-major once, as diffusers' `permute(…).reshape(…)` does (a tiled
        // copy); otherwise every residual add below would walk the channel-major view element
        // by element.
        let mut t = contiguous(
            conv2d(&self.proj_in, group_norm_forward(&self.norm, x.clone()))
                .reshape([n, c, h * w])
                .swap_dims(1, 2),
        );
        for (i, block) in self.transformer_blocks.iter().enumerate() {
            let adapter = lora.map(|(l, s)| (&l.transformer_blocks[i], s));
            t = block.attn1.forward(
                layer_norm(&block.norm1, t.clone()),
                None,
                adapter.map(|(a, s)| (&a.attn1, s)),
            ) + t;
            t = block.attn2.forward(
                layer_norm(&block.norm2, t.clone()),
                Some(context.clone()),
                adapter.map(|(a, s)| (&a.attn2, s)),
            ) + t;
            t = block.ff.forward(layer_norm(&block.norm3, t.clone())) + t;
        }
        let t = contiguous(t.swap_dims(1, 2)).reshape([n, c, h, w]);
        conv2d(&self.proj_out, t) + x
    }
}

impl<B: Backend> Attention<B> {
    /// Self-attention when `context` is `None`, else attention from `x` to `context`; a LoRA
    /// (with its scale) adds its update to each projection.
    fn forward(
        &self,
        x: Tensor<B, 3>,
        context: Option<Tensor<B, 3>>,
        lora: Option<(&LoraAttention<B>, f64)>,
    ) -> Tensor<B, 3> {
        let context = context.unwrap_or_else(|| x.clone());
        let mut q = linear::forward(&self.to_q, x.clone());
        let mut k = linear::forward(&self.to_k, context.clone());
        let mut v = linear::forward(&self.to_v, context.clone());
        if let Some((l, s)) = lora {
            q = q + l.to_q.delta(x, s);
            k = k + l.to_k.delta(context.clone(), s);
            v = v + l.to_v.delta(context, s);
        }
        let heads = multi_head_attention(q, k, v, self.heads, None);
        match lora {
            Some((l, s)) => {
                linear::forward(&self.to_out[0], heads.clone()) + l.to_out[0].delta(heads, s)
            }
            None => linear::forward(&self.to_out[0], heads),
        }
    }
}

impl<B: Backend> FeedForward<B> {
    /// `net.2(a · GELU(gate))` where `[a, gate]` are the halves of `net.0.proj(x)`'s channels.
    ///
    /// Each half is projected by its own half of the weight rather than sliced out of the full
    /// projection: slices of the last dim are strided views, on which burn-flex's element-wise
    /// product walks every element through its generic strided iterator (3.6 % of a tiny-SD
    /// rollout); the halves' products come out contiguous. The same products per element; the
    /// matrix product may sum them in another order (the parity tests' bounds are unchanged).
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let proj = &self.net.0.proj;
        let half = proj.weight.dims()[1] / 2;
        let project = |from: usize| {
            linear::apply(
                x.clone(),
                proj.weight.val().narrow(1, from, half),
                proj.bias.as_ref().map(|b| b.val().narrow(0, from, half)),
            )
        };
        linear::forward(&self.net.2, project(0) * gelu(project(half)))
    }
}

impl<B: Backend> UNetBlock<B> {
    fn lora_layout(&self) -> BlockLayout {
        let shape = |a: &Attention<B>| {
            let [query, inner] = a.to_q.weight.shape().dims::<2>();
            AttentionShape {
                query,
                context: a.to_k.weight.shape().dims::<2>()[0],
                inner,
            }
        };
        self.attentions
            .iter()
            .map(|t| {
                t.transformer_blocks
                    .iter()
                    .map(|tb| [shape(&tb.attn1), shape(&tb.attn2)])
                    .collect()
            })
            .collect()
    }
}

impl<B: Backend> UNet2DConditionModel<B> {
    /// The shapes of the attention projections a LoRA adapts.
    pub fn lora_layout(&self) -> LoraLayout {
        LoraLayout {
            down_blocks: self
                .down_blocks
                .iter()
                .map(UNetBlock::lora_layout)
                .collect(),
            mid_block: self.mid_block.lora_layout(),
            up_blocks: self.up_blocks.iter().map(UNetBlock::lora_layout).collect(),
        }
    }

    /// Builds the UNet from a diffusers `unet/` folder (`config.json` and
    /// `diffusion_pytorch_model.safetensors`, fp32 or fp16).
    pub fn from_folder(folder: &Path, device: &B::Device) -> Result<Self, LoadError> {
        let path = folder.join("config.json");
        let config: UNetConfig = read_json(&path)?;
        config
            .check()
            .map_err(|message| LoadError::Read { path, message })?;
        load_safetensors(config.init(device), &component_weights(folder)?)
    }

    /// The time embedding `[N, 4·C₀]` of timesteps `[N]`.
    /// The features are computed in f32 and cast to the weights' precision.
    pub fn time_embedding(&self, timesteps: Tensor<B, 1>) -> Tensor<B, 2> {
        let features = timestep_features(timesteps, self.time_proj_dim, self.freq_shift);
        self.time_embedding.forward(to_precision_of(
            features,
            &self.time_embedding.linear_1.weight.val(),
        ))
    }

    /// `conv_in` and the down blocks: the last activation and every skip connection, in order.
    pub fn down_path(
        &self,
        sample: Tensor<B, 4>,
        emb: Tensor<B, 2>,
        ctx: Tensor<B, 3>,
        lora: Option<&UNetLora<B>>,
    ) -> (Tensor<B, 4>, Vec<Tensor<B, 4>>) {
        down_path(&self.conv_in, &self.down_blocks, sample, emb, ctx, lora)
    }

    /// ε̂ `[N, out, h, w]` for latents `[N, in, h, w]` (h, w multiples of 2^(blocks−1)),
    /// timesteps `[N]` (training-schedule units, fractional allowed) and the text encoder's
    /// hidden states `[N, L, cross_attention_dim]`.
    pub fn forward(
        &self,
        sample: Tensor<B, 4>,
        timesteps: Tensor<B, 1>,
        encoder_hidden_states: Tensor<B, 3>,
    ) -> Tensor<B, 4> {
        self.forward_with_lora(sample, timesteps, encoder_hidden_states, None)
    }

    /// [`Self::forward`] with a LoRA on the attention projections (`None`: the base model).
    pub fn forward_with_lora(
        &self,
        sample: Tensor<B, 4>,
        timesteps: Tensor<B, 1>,
        encoder_hidden_states: Tensor<B, 3>,
        lora: Option<&UNetLora<B>>,
    ) -> Tensor<B, 4> {
        let scale = lora.map_or(1.0, UNetLora::scale);
        // Inputs in the weights' precision (bf16 or f16 frozen weights), ε̂ in the caller's.
        let out_dtype = sample.dtype();
        let weight = self.conv_in.weight.val();
        let sample = to_precision_of(sample, &weight);
        let ctx = to_precision_of(encoder_hidden_states, &weight);
        let emb = self.time_embedding(timesteps);
        let (mut x, mut skips) = self.down_path(sample, emb.clone(), ctx.clone(), lora);
        let mid = &self.mid_block;
        x = mid.resnets[0].forward(x, Some(emb.clone()));
        x = mid.attentions[0].forward(
            x,
            ctx.clone(),
            adapter(lora.map(|l| &l.mid_block), 0, scale),
        );
        x = mid.resnets[1].forward(x, Some(emb.clone()));

        for (b, block) in self.up_blocks.iter().enumerate() {
            let lb = lora.map(|l| &l.up_blocks[b]);
            for (i, resnet) in block.resnets.iter().enumerate() {
                let skip = skips.pop().expect("one skip per up-block resnet");
                x = resnet.forward(Tensor::cat(vec![x, skip], 1), Some(emb.clone()));
                if let Some(attn) = block.attentions.get(i) {
                    x = attn.forward(x, ctx.clone(), adapter(lb, i, scale));
                }
            }
            for up in &block.upsamplers {
                x = up.forward(x);
            }
        }
        let eps = conv2d(&self.conv_out, group_norm_silu(&self.conv_norm_out, x));
        to_dtype(eps, out_dtype)
    }
}

/// The LoRA of a block's `i`-th transformer, with the LoRA's scale.
fn adapter<B: Backend>(
    block: Option<&LoraBlock<B>>,
    i: usize,
    scale: f64,
) -> Option<(&LoraTransformer<B>, f64)> {
    block.map(|b| (&b.attentions[i], scale))
}

/// Sinusoidal features `[cos(t·f_i), sin(t·f_i)]`, `f_i = exp(−ln(10⁴)·i/(half − shift))`,
/// computed in f32 as diffusers does (timesteps up to 999 make the f32 rounding of `t·f_i`
/// visible, so f64 features would not match).
pub fn timestep_features<B: Backend>(
    timesteps: Tensor<B, 1>,
    dim: usize,
    freq_shift: usize,
) -> Tensor<B, 2> {
    let half = dim / 2;
    let denom = (half - freq_shift) as f32;
    let freqs: Vec<f32> = (0..half)
        .map(|i| ((-(10000f64.ln()) as f32) * i as f32 / denom).exp())
        .collect();
    let freqs = Tensor::<B, 2>::from_data(TensorData::new(freqs, [1, half]), &timesteps.device());
    let args = timesteps.unsqueeze_dim::<2>(1) * freqs;
    Tensor::cat(vec![args.clone().cos(), args.sin()], 1)
}

/// `conv_in` and the down blocks: the last activation and every skip connection, in order.
/// Also the whole network of an encoder-only model (a flow head on the UNet's down path).
pub fn down_path<B: Backend>(
    conv_in: &Conv2d<B>,
    down_blocks: &[UNetBlock<B>],
    sample: Tensor<B, 4>,
    emb: Tensor<B, 2>,
    ctx: Tensor<B, 3>,
    lora: Option<&UNetLora<B>>,
) -> (Tensor<B, 4>, Vec<Tensor<B, 4>>) {
    let scale = lora.map_or(1.0, UNetLora::scale);
    let mut x = conv2d(conv_in, sample);
    let mut skips = vec![x.clone()];
    for (b, block) in down_blocks.iter().enumerate() {
        let lb = lora.map(|l| &l.down_blocks[b]);
        for (i, resnet) in block.resnets.iter().enumerate() {
            x = resnet.forward(x, Some(emb.clone()));
            if let Some(attn) = block.attentions.get(i) {
                x = attn.forward(x, ctx.clone(), adapter(lb, i, scale));
            }
            skips.push(x.clone());
        }
        for down in &block.downsamplers {
            x = down.forward(x);
            skips.push(x.clone());
        }
    }
    (x, skips)
}

impl<B: Backend> TimestepEmbedding<B> {
    /// `linear_1 → SiLU → linear_2` of sinusoidal features.
    pub fn forward(&self, features: Tensor<B, 2>) -> Tensor<B, 2> {
        linear::forward(
            &self.linear_2,
            silu(linear::forward(&self.linear_1, features)),
        )
    }
}
