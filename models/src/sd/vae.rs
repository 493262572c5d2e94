//! SD's VAE (diffusers' `AutoencoderKL`): images in [-1, 1] ↔ latents with 4 channels at 1/8 of
//! the resolution (1/2^(blocks−1) in general).
//!
//! Latents in SD's sampler are the VAE's latents times `scaling_factor` (0.18215 for v1), so that
//! they have roughly unit variance; [`AutoencoderKl::decode_latents`] undoes that factor as
//! diffusers' pipeline does before decoding.

use std::path::Path;

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::GroupNorm;
use burn::tensor::{backend::Backend, Tensor};
use serde::Deserialize;

use super::blocks::{
    conv, group_norm, group_norm_silu, Downsample2D, ResnetBlock2D, SpatialAttention, Upsample2D,
};
use crate::conv::conv2d;
use crate::precision::{to_dtype, to_precision_of};
use crate::weights::{component_weights, load_safetensors_remapped, read_json, LoadError};

/// diffusers' VAE blocks use this GroupNorm epsilon throughout.
const EPS: f64 = 1e-6;

/// The fields of diffusers' `AutoencoderKL` config (`vae/config.json`) that matter here.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VaeConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub block_out_channels: Vec<usize>,
    pub layers_per_block: usize,
    pub latent_channels: usize,
    pub norm_num_groups: usize,
    #[serde(default = "default_scaling")]
    pub scaling_factor: f64,
    #[serde(default = "default_down")]
    pub down_block_types: Vec<String>,
    #[serde(default = "default_up")]
    pub up_block_types: Vec<String>,
    #[serde(default = "default_true")]
    pub use_quant_conv: bool,
    #[serde(default = "default_true")]
    pub use_post_quant_conv: bool,
    #[serde(default = "default_true")]
    pub mid_block_add_attention: bool,
}

fn default_scaling() -> f64 {
    0.18215
}
fn default_down() -> Vec<String> {
    vec!["DownEncoderBlock2D".into()]
}
fn default_up() -> Vec<String> {
    vec!["UpDecoderBlock2D".into()]
}
fn default_true() -> bool {
    true
}

impl VaeConfig {
    /// SD v1.5's VAE.
    pub fn sd15() -> Self {
        Self {
            in_channels: 3,
            out_channels: 3,
            block_out_channels: vec![128, 256, 512, 512],
            layers_per_block: 2,
            latent_channels: 4,
            norm_num_groups: 32,
            scaling_factor: 0.18215,
            down_block_types: vec!["DownEncoderBlock2D".into(); 4],
            up_block_types: vec!["UpDecoderBlock2D".into(); 4],
            use_quant_conv: true,
            use_post_quant_conv: true,
            mid_block_add_attention: true,
        }
    }

    /// Only the plain SD architecture is built; anything else is refused by name.
    pub fn check(&self) -> Result<(), String> {
        let n = self.block_out_channels.len();
        let only =
            |types: &[String], name: &str| types.len() == n && types.iter().all(|t| t == name);
        if !only(&self.down_block_types, "DownEncoderBlock2D")
            || !only(&self.up_block_types, "UpDecoderBlock2D")
        {
            return Err(format!(
                "unsupported VAE blocks {:?} / {:?}: expected {n} DownEncoderBlock2D and {n} UpDecoderBlock2D",
                self.down_block_types, self.up_block_types
            ));
        }
        if !self.mid_block_add_attention {
            return Err("a VAE without mid-block attention is not supported".into());
        }
        Ok(())
    }

    /// A VAE with this architecture and zero weights, to be overwritten by a checkpoint.
    pub fn init<B: Backend>(&self, device: &B::Device) -> AutoencoderKl<B> {
        if let Err(e) = self.check() {
            panic!("{e}");
        }
        let ch = &self.block_out_channels;
        let g = self.norm_num_groups;
        let last = *ch.last().expect("block_out_channels is empty");
        let resnet = |i, o| ResnetBlock2D::new(i, o, None, g, EPS, device);
        let mid = || MidBlock {
            resnets: vec![resnet(last, last), resnet(last, last)],
            attentions: vec![SpatialAttention::new(last, g, EPS, device)],
        };
        let down_blocks = (0..ch.len())
            .map(|i| {
                let c_in = if i == 0 { ch[0] } else { ch[i - 1] };
                EncoderBlock {
                    resnets: (0..self.layers_per_block)
                        .map(|j| resnet(if j == 0 { c_in } else { ch[i] }, ch[i]))
                        .collect(),
                    downsamplers: if i + 1 < ch.len() {
                        vec![Downsample2D::new(ch[i], true, device)]
                    } else {
                        vec![]
                    },
                }
            })
            .collect();
        let reversed: Vec<usize> = ch.iter().rev().copied().collect();
        let up_blocks = (0..reversed.len())
            .map(|i| {
                let c_in = if i == 0 { reversed[0] } else { reversed[i - 1] };
                DecoderBlock {
                    resnets: (0..=self.layers_per_block)
                        .map(|j| resnet(if j == 0 { c_in } else { reversed[i] }, reversed[i]))
                        .collect(),
                    upsamplers: if i + 1 < reversed.len() {
                        vec![Upsample2D::new(reversed[i], device)]
                    } else {
                        vec![]
                    },
                }
            })
            .collect();
        let z2 = 2 * self.latent_channels;
        AutoencoderKl {
            encoder: Encoder {
                conv_in: conv(self.in_channels, ch[0], 3, 1, 1, device),
                down_blocks,
                mid_block: mid(),
                conv_norm_out: group_norm(g, last, EPS, device),
                conv_out: conv(last, z2, 3, 1, 1, device),
            },
            decoder: Decoder {
                conv_in: conv(self.latent_channels, last, 3, 1, 1, device),
                mid_block: mid(),
                up_blocks,
                conv_norm_out: group_norm(g, ch[0], EPS, device),
                conv_out: conv(ch[0], self.out_channels, 3, 1, 1, device),
            },
            quant_conv: self.use_quant_conv.then(|| conv(z2, z2, 1, 1, 0, device)),
            post_quant_conv: self
                .use_post_quant_conv
                .then(|| conv(self.latent_channels, self.latent_channels, 1, 1, 0, device)),
            scaling_factor: self.scaling_factor,
        }
    }
}

#[derive(Module, Debug)]
pub struct AutoencoderKl<B: Backend> {
    pub encoder: Encoder<B>,
    pub decoder: Decoder<B>,
    pub quant_conv: Option<Conv2d<B>>,
    pub post_quant_conv: Option<Conv2d<B>>,
    #[module(skip)]
    pub scaling_factor: f64,
}

#[derive(Module, Debug)]
pub struct Encoder<B: Backend> {
    pub conv_in: Conv2d<B>,
    pub down_blocks: Vec<EncoderBlock<B>>,
    pub mid_block: MidBlock<B>,
    pub conv_norm_out: GroupNorm<B>,
    pub conv_out: Conv2d<B>,
}

#[derive(Module, Debug)]
pub struct Decoder<B: Backend> {
    pub conv_in: Conv2d<B>,
    pub mid_block: MidBlock<B>,
    pub up_blocks: Vec<DecoderBlock<B>>,
    pub conv_norm_out: GroupNorm<B>,
    pub conv_out: Conv2d<B>,
}

/// diffusers' `DownEncoderBlock2D`.
#[derive(Module, Debug)]
pub struct EncoderBlock<B: Backend> {
    pub resnets: Vec<ResnetBlock2D<B>>,
    pub downsamplers: Vec<Downsample2D<B>>,
}

/// diffusers' `UpDecoderBlock2D`.
#[derive(Module, Debug)]
pub struct DecoderBlock<B: Backend> {
    pub resnets: Vec<ResnetBlock2D<B>>,
    pub upsamplers: Vec<Upsample2D<B>>,
}

/// diffusers' `UNetMidBlock2D` without time embedding: resnet, attention, resnet.
#[derive(Module, Debug)]
pub struct MidBlock<B: Backend> {
    pub resnets: Vec<ResnetBlock2D<B>>,
    pub attentions: Vec<SpatialAttention<B>>,
}

impl<B: Backend> MidBlock<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = self.resnets[0].forward(x, None);
        let x = self.attentions[0].forward(x);
        self.resnets[1].forward(x, None)
    }
}

/// The encoder's output distribution over latents (before `scaling_factor`).
#[derive(Debug, Clone)]
pub struct DiagonalGaussian<B: Backend> {
    pub mean: Tensor<B, 4>,
    /// Clamped to [-30, 20] as diffusers does.
    pub logvar: Tensor<B, 4>,
}

/// VAE files saved before diffusers' attention refactor (as some SD v1.x folders on the Hub
/// are) name the attention projections `query`/`key`/`value`/`proj_attn`; diffusers renames
/// them on load, and so do we.
pub(crate) const OLD_ATTENTION_KEYS: [(&str, &str); 4] = [
    (r"(attentions\.\d+)\.query\.", "$1.to_q."),
    (r"(attentions\.\d+)\.key\.", "$1.to_k."),
    (r"(attentions\.\d+)\.value\.", "$1.to_v."),
    (r"(attentions\.\d+)\.proj_attn\.", "$1.to_out.0."),
];

impl<B: Backend> AutoencoderKl<B> {
    /// Builds the VAE from a diffusers `vae/` folder (`config.json` and
    /// `diffusion_pytorch_model.safetensors`, fp32 or fp16).
    pub fn from_folder(folder: &Path, device: &B::Device) -> Result<Self, LoadError> {
        let path = folder.join("config.json");
        let config: VaeConfig = read_json(&path)?;
        config
            .check()
            .map_err(|message| LoadError::Read { path, message })?;
        load_safetensors_remapped(
            config.init(device),
            &component_weights(folder)?,
            &OLD_ATTENTION_KEYS,
        )
    }

    /// Images `[N, 3, H, W]` in [-1, 1] → the latent distribution.
    /// Computed in the weights' precision, returned in `image`'s.
    pub fn encode(&self, image: Tensor<B, 4>) -> DiagonalGaussian<B> {
        let e = &self.encoder;
        let out_dtype = image.dtype();
        let mut x = conv2d(&e.conv_in, to_precision_of(image, &e.conv_in.weight.val()));
        for block in &e.down_blocks {
            for r in &block.resnets {
                x = r.forward(x, None);
            }
            for d in &block.downsamplers {
                x = d.forward(x);
            }
        }
        x = e.mid_block.forward(x);
        x = conv2d(&e.conv_out, group_norm_silu(&e.conv_norm_out, x));
        if let Some(q) = &self.quant_conv {
            x = conv2d(q, x);
        }
        let [mean, logvar] = to_dtype(x, out_dtype)
            .chunk(2, 1)
            .try_into()
            .expect("2 chunks");
        DiagonalGaussian {
            mean,
            logvar: logvar.clamp(-30.0, 20.0),
        }
    }

    /// The decoder applied to `z` as given (no scaling): output roughly in [-1, 1].
    /// Computed in the weights' precision, returned in `z`'s.
    pub fn decode(&self, z: Tensor<B, 4>) -> Tensor<B, 4> {
        let d = &self.decoder;
        let out_dtype = z.dtype();
        let z = to_precision_of(z, &d.conv_in.weight.val());
        let z = match &self.post_quant_conv {
            Some(p) => conv2d(p, z),
            None => z,
        };
        let mut x = d.mid_block.forward(conv2d(&d.conv_in, z));
        for block in &d.up_blocks {
            for r in &block.resnets {
                x = r.forward(x, None);
            }
            for u in &block.upsamplers {
                x = u.forward(x);
            }
        }
        let image = conv2d(&d.conv_out, group_norm_silu(&d.conv_norm_out, x));
        to_dtype(image, out_dtype)
    }

    /// What SD's pipeline does with its final latents: divide by `scaling_factor`, decode, map
    /// [-1, 1] to [0, 1] and clamp. Images `[N, 3, H, W]`.
    pub fn decode_latents(&self, latents: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = self.decode(latents / self.scaling_factor);
        (x / 2.0 + 0.5).clamp(0.0, 1.0)
    }
}
