//! Building blocks shared by SD's VAE and UNet, named after diffusers' modules and keys:
//! `ResnetBlock2D`, `Downsample2D`, `Upsample2D` and the VAE's single-head spatial attention.
//!
//! Constructors make zero weights (cheap for the 860M-parameter UNet); a checkpoint overwrites
//! them.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::ops::PadMode;
use burn::tensor::{backend::Backend, Tensor};

use crate::attention::multi_head_attention;
use crate::conv::conv2d;
use crate::flex_kernels;
use crate::linear;
use crate::per_channel::per_channel;
use crate::precision::in_f32;
use crate::silu::silu;

pub(crate) fn conv<B: Backend>(
    c_in: usize,
    c_out: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    device: &B::Device,
) -> Conv2d<B> {
    Conv2dConfig::new([c_in, c_out], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_initializer(Initializer::Zeros)
        .init(device)
}

pub(crate) fn group_norm<B: Backend>(
    groups: usize,
    channels: usize,
    eps: f64,
    device: &B::Device,
) -> GroupNorm<B> {
    GroupNormConfig::new(groups, channels)
        .with_epsilon(eps)
        .init(device)
}

/// `norm.forward(x)` for `x` `[N, C, H, W]` (in f32 for a half-precision `x`).
pub(crate) fn group_norm_forward<B: Backend>(norm: &GroupNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    normalise(norm, x, false)
}

/// `silu(norm.forward(x))`: one pass on the CPU inference backend ([`flex_kernels`]).
pub(crate) fn group_norm_silu<B: Backend>(norm: &GroupNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    normalise(norm, x, true)
}

fn normalise<B: Backend>(norm: &GroupNorm<B>, x: Tensor<B, 4>, then_silu: bool) -> Tensor<B, 4> {
    in_f32(x, |x| {
        let affine = norm.gamma.as_ref().zip(norm.beta.as_ref());
        let values = affine.map(|(gamma, beta)| (gamma.val(), beta.val()));
        match flex_kernels::group_norm(x, norm.num_groups, values, norm.epsilon, then_silu) {
            Ok(y) => y,
            Err(x) => {
                let y = composed_group_norm(norm, x);
                if then_silu {
                    silu(y)
                } else {
                    y
                }
            }
        }
    })
}

/// burn's `GroupNorm` (the same operations in the same order, so the same values) with its
/// scale and shift repeated over the batch ([`per_channel`]).
fn composed_group_norm<B: Backend>(norm: &GroupNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let groups = norm.num_groups;
    let hidden = c / groups * h * w;
    let grouped = x.reshape([n, groups, hidden]);
    // Not the backend's fused layer norm over each group: burn-flex's f32 kernel takes the
    // variance as E[x²] − E[x]², which cancels where a group's mean is large against its
    // spread (conv outputs): the tiny UNet's ε moved by 7e-4 against diffusers' (1e-4
    // allowed). Two passes, as PyTorch's group norm.
    let mean = grouped.clone().sum_dim(2) / hidden as f64;
    let centred = grouped.sub(mean);
    let var = centred.clone().square().sum_dim(2) / hidden as f64;
    let normalized = centred
        .div(var.add_scalar(norm.epsilon).sqrt())
        .reshape([n, c, h, w]);
    match (&norm.gamma, &norm.beta) {
        (Some(gamma), Some(beta)) => normalized
            .mul(per_channel(gamma.val(), n))
            .add(per_channel(beta.val(), n)),
        _ => normalized,
    }
}

pub(crate) fn linear<B: Backend>(
    d_in: usize,
    d_out: usize,
    bias: bool,
    device: &B::Device,
) -> Linear<B> {
    LinearConfig::new(d_in, d_out)
        .with_bias(bias)
        .with_initializer(Initializer::Zeros)
        .init(device)
}

/// `norm1 → SiLU → conv1 (+ time embedding) → norm2 → SiLU → conv2`, plus the input (through a
/// 1×1 `conv_shortcut` when the channel count changes).
#[derive(Module, Debug)]
pub struct ResnetBlock2D<B: Backend> {
    pub norm1: GroupNorm<B>,
    pub conv1: Conv2d<B>,
    pub time_emb_proj: Option<Linear<B>>,
    pub norm2: GroupNorm<B>,
    pub conv2: Conv2d<B>,
    pub conv_shortcut: Option<Conv2d<B>>,
}

impl<B: Backend> ResnetBlock2D<B> {
    /// `temb_channels`: the UNet's time-embedding width, `None` in the VAE.
    pub fn new(
        c_in: usize,
        c_out: usize,
        temb_channels: Option<usize>,
        groups: usize,
        eps: f64,
        device: &B::Device,
    ) -> Self {
        Self {
            norm1: group_norm(groups, c_in, eps, device),
            conv1: conv(c_in, c_out, 3, 1, 1, device),
            time_emb_proj: temb_channels.map(|t| linear(t, c_out, true, device)),
            norm2: group_norm(groups, c_out, eps, device),
            conv2: conv(c_out, c_out, 3, 1, 1, device),
            conv_shortcut: (c_in != c_out).then(|| conv(c_in, c_out, 1, 1, 0, device)),
        }
    }

    /// `temb` `[N, temb_channels]` is the (un-activated) time embedding; SiLU is applied here.
    pub fn forward(&self, x: Tensor<B, 4>, temb: Option<Tensor<B, 2>>) -> Tensor<B, 4> {
        let mut h = conv2d(&self.conv1, group_norm_silu(&self.norm1, x.clone()));
        if let (Some(proj), Some(temb)) = (&self.time_emb_proj, temb) {
            let t = linear::forward(proj, silu(temb));
            let [n, c] = t.dims();
            h = h + t.reshape([n, c, 1, 1]);
        }
        let h = conv2d(&self.conv2, group_norm_silu(&self.norm2, h));
        let shortcut = match &self.conv_shortcut {
            Some(c) => conv2d(c, x),
            None => x,
        };
        shortcut + h
    }
}

/// A stride-2 3×3 convolution. The VAE's pads only right and bottom (padding 0 plus a (0, 1, 0, 1)
/// pad, as the original LDM code did); the UNet's pads 1 on every side.
#[derive(Module, Debug)]
pub struct Downsample2D<B: Backend> {
    pub conv: Conv2d<B>,
    #[module(skip)]
    pub asymmetric: bool,
}

impl<B: Backend> Downsample2D<B> {
    pub fn new(channels: usize, asymmetric: bool, device: &B::Device) -> Self {
        let padding = if asymmetric { 0 } else { 1 };
        Self {
            conv: conv(channels, channels, 3, 2, padding, device),
            asymmetric,
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = if self.asymmetric {
            x.pad((0, 1, 0, 1), PadMode::Constant(0.0))
        } else {
            x
        };
        conv2d(&self.conv, x)
    }
}

/// Nearest-neighbour ×2 upsampling followed by a 3×3 convolution.
#[derive(Module, Debug)]
pub struct Upsample2D<B: Backend> {
    pub conv: Conv2d<B>,
}

impl<B: Backend> Upsample2D<B> {
    pub fn new(channels: usize, device: &B::Device) -> Self {
        Self {
            conv: conv(channels, channels, 3, 1, 1, device),
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, c, h, w] = x.dims();
        let x = x
            .reshape([n, c, h, 1, w, 1])
            .expand([n, c, h, 2, w, 2])
            .reshape([n, c, 2 * h, 2 * w]);
        conv2d(&self.conv, x)
    }
}

/// The VAE's mid-block attention: group norm, one head over all H·W positions, residual.
#[derive(Module, Debug)]
pub struct SpatialAttention<B: Backend> {
    pub group_norm: GroupNorm<B>,
    pub to_q: Linear<B>,
    pub to_k: Linear<B>,
    pub to_v: Linear<B>,
    pub to_out: Vec<Linear<B>>,
}

impl<B: Backend> SpatialAttention<B> {
    pub fn new(channels: usize, groups: usize, eps: f64, device: &B::Device) -> Self {
        Self {
            group_norm: group_norm(groups, channels, eps, device),
            to_q: linear(channels, channels, true, device),
            to_k: linear(channels, channels, true, device),
            to_v: linear(channels, channels, true, device),
            to_out: vec![linear(channels, channels, true, device)],
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, c, h, w] = x.dims();
        let tokens = flex_kernels::contiguous(
            group_norm_forward(&self.group_norm, x.clone())
                .reshape([n, c, h * w])
                .swap_dims(1, 2),
        );
        let q = linear::forward(&self.to_q, tokens.clone());
        let k = linear::forward(&self.to_k, tokens.clone());
        let v = linear::forward(&self.to_v, tokens);
        let attn = multi_head_attention(q, k, v, 1, None);
        let out = flex_kernels::contiguous(linear::forward(&self.to_out[0], attn).swap_dims(1, 2))
            .reshape([n, c, h, w]);
        out + x
    }
}
