//! The pre-LN transformer encoder CLIP's towers share (transformers' `CLIPEncoder`): the text
//! tower runs it with a causal mask, the vision tower without one.

use crate::gelu::gelu;
use burn::module::Module;
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::{backend::Backend, Bool, Tensor};
use serde::Deserialize;

use crate::attention::multi_head_attention;
use crate::flex_kernels::{self, QUICK_GELU_SLOPE};
use crate::layer_norm::layer_norm;
use crate::linear;

/// The MLP activations CLIP text encoders use: OpenAI's CLIP (SD v1) uses QuickGELU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ClipActivation {
    /// `x · σ(1.702 x)`
    #[serde(rename = "quick_gelu")]
    QuickGelu,
    /// The exact (erf) GELU.
    #[serde(rename = "gelu")]
    Gelu,
}

/// The sizes of an encoder.
#[derive(Debug, Clone, Copy)]
pub struct EncoderShape {
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    pub activation: ClipActivation,
    pub layer_norm_eps: f64,
}

#[derive(Module, Debug)]
pub struct ClipEncoder<B: Backend> {
    pub layers: Vec<ClipEncoderLayer<B>>,
}

/// A pre-LN transformer block: `x + attn(ln1(x))`, then `x + mlp(ln2(x))`.
#[derive(Module, Debug)]
pub struct ClipEncoderLayer<B: Backend> {
    pub self_attn: ClipAttention<B>,
    pub layer_norm1: LayerNorm<B>,
    pub mlp: ClipMlp<B>,
    pub layer_norm2: LayerNorm<B>,
}

#[derive(Module, Debug)]
pub struct ClipAttention<B: Backend> {
    pub q_proj: Linear<B>,
    pub k_proj: Linear<B>,
    pub v_proj: Linear<B>,
    pub out_proj: Linear<B>,
    pub num_heads: usize,
}

#[derive(Module, Debug)]
pub struct ClipMlp<B: Backend> {
    pub fc1: Linear<B>,
    pub fc2: Linear<B>,
    #[module(skip)]
    pub activation: ClipActivation,
}

impl<B: Backend> ClipEncoder<B> {
    /// An encoder of zero weights, to be overwritten by a checkpoint.
    pub fn init(shape: &EncoderShape, device: &B::Device) -> Self {
        let h = shape.hidden;
        assert!(
            h.is_multiple_of(shape.heads),
            "hidden size {h} is not a multiple of the {} heads",
            shape.heads
        );
        let linear = |i, o| {
            LinearConfig::new(i, o)
                .with_initializer(Initializer::Zeros)
                .init(device)
        };
        let norm = || {
            LayerNormConfig::new(h)
                .with_epsilon(shape.layer_norm_eps)
                .init(device)
        };
        let layers = (0..shape.layers)
            .map(|_| ClipEncoderLayer {
                self_attn: ClipAttention {
                    q_proj: linear(h, h),
                    k_proj: linear(h, h),
                    v_proj: linear(h, h),
                    out_proj: linear(h, h),
                    num_heads: shape.heads,
                },
                layer_norm1: norm(),
                mlp: ClipMlp {
                    fc1: linear(h, shape.intermediate),
                    fc2: linear(shape.intermediate, h),
                    activation: shape.activation,
                },
                layer_norm2: norm(),
            })
            .collect();
        Self { layers }
    }

    /// Every layer over `x` `[N, L, hidden]`; `mask` `[N, L, L]` is true where attention is
    /// forbidden.
    pub fn forward(&self, mut x: Tensor<B, 3>, mask: Option<Tensor<B, 3, Bool>>) -> Tensor<B, 3> {
        for layer in &self.layers {
            x = x.clone()
                + layer
                    .self_attn
                    .forward(layer_norm(&layer.layer_norm1, x), mask.clone());
            x = x.clone() + layer.mlp.forward(layer_norm(&layer.layer_norm2, x));
        }
        x
    }
}

impl<B: Backend> ClipAttention<B> {
    /// Multi-head self-attention; `mask` `[N, L, L]` is true where attention is forbidden.
    fn forward(&self, x: Tensor<B, 3>, mask: Option<Tensor<B, 3, Bool>>) -> Tensor<B, 3> {
        let q = linear::forward(&self.q_proj, x.clone());
        let k = linear::forward(&self.k_proj, x.clone());
        let v = linear::forward(&self.v_proj, x);
        let out = multi_head_attention(q, k, v, self.num_heads, mask);
        linear::forward(&self.out_proj, out)
    }
}

impl<B: Backend> ClipMlp<B> {
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let x = linear::forward(&self.fc1, x);
        let x = match self.activation {
            // One vectorised pass on the CPU (burn-flex's sigmoid is a scalar `exp` per
            // element: 2–3 % of DreamSim's CLIP branches); burn's ops elsewhere.
            ClipActivation::QuickGelu => flex_kernels::quick_gelu(x)
                .unwrap_or_else(|x| x.clone() * sigmoid(x * QUICK_GELU_SLOPE)),
            ClipActivation::Gelu => gelu(x),
        };
        linear::forward(&self.fc2, x)
    }
}
