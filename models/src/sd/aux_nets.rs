//! The small networks SD objectives train beside the LoRA, built from the UNet's own blocks:
//! a flow/value head on a UNet's down path (DAG's F_φ: the encoder half of a small UNet, pooled,
//! then a linear layer) and a small full UNet as a vector field (∇-GFlowNet's g_φ).

use burn::module::{Module, ModuleMapper, Param};
use burn::nn::conv::Conv2d;
use burn::nn::Linear;
use burn::tensor::{backend::Backend, Tensor, TensorData};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::unet::{down_path, timestep_features, TimestepEmbedding, UNetBlock, UNetConfig};
use super::UNet2DConditionModel;
use crate::linear;

/// Widths of a small UNet-family network conditioned like SD's UNet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuxNetConfig {
    /// Channels per block; every block but the last cross-attends to the prompt (the papers:
    /// 64, 128, 256, 256).
    pub block_out_channels: Vec<usize>,
    /// Attention heads per transformer.
    pub heads: usize,
    /// Group-norm groups (must divide every width).
    pub norm_num_groups: usize,
}

impl Default for AuxNetConfig {
    fn default() -> Self {
        Self {
            block_out_channels: vec![64, 128, 256, 256],
            heads: 8,
            norm_num_groups: 32,
        }
    }
}

impl AuxNetConfig {
    /// The UNet configuration for latents of `channels` channels and a text context of width
    /// `context_dim`: one layer per block, SD's block types.
    pub fn unet(&self, channels: usize, context_dim: usize) -> Result<UNetConfig, String> {
        let n = self.block_out_channels.len();
        if n == 0 {
            return Err("block_out_channels: at least one block".into());
        }
        if let Some(c) = self
            .block_out_channels
            .iter()
            .find(|&&c| c % self.norm_num_groups != 0 || c % self.heads != 0)
        {
            return Err(format!(
                "block_out_channels: {c} is not a multiple of norm_num_groups ({}) and heads ({})",
                self.norm_num_groups, self.heads
            ));
        }
        let down = (0..n).map(|i| {
            if i + 1 < n {
                "CrossAttnDownBlock2D"
            } else {
                "DownBlock2D"
            }
        });
        let up = (0..n).map(|i| {
            if i == 0 {
                "UpBlock2D"
            } else {
                "CrossAttnUpBlock2D"
            }
        });
        Ok(UNetConfig {
            in_channels: channels,
            out_channels: channels,
            block_out_channels: self.block_out_channels.clone(),
            layers_per_block: 1,
            down_block_types: down.map(String::from).collect(),
            up_block_types: up.map(String::from).collect(),
            cross_attention_dim: context_dim,
            attention_head_dim: super::unet::PerBlock::Same(self.heads),
            norm_num_groups: self.norm_num_groups,
            ..UNetConfig::sd15()
        })
    }
}

/// Re-initialises every linear and convolution layer as PyTorch does (uniform in ±1/√fan_in,
/// weights and biases) from the caller's RNG; norms keep their unit scale and zero shift.
pub fn random_init<B: Backend, M: Module<B>>(module: M, rng: &mut impl Rng) -> M {
    module.map(&mut Randomize {
        rng,
        containers: vec![],
        fan_in: 1,
    })
}

struct Randomize<'a, R: Rng> {
    rng: &'a mut R,
    containers: Vec<String>,
    /// Fan-in of the current layer, set by its weight (visited before its bias).
    fan_in: usize,
}

impl<B: Backend, R: Rng> ModuleMapper<B> for Randomize<'_, R> {
    fn enter_module(&mut self, _name: &str, container_type: &str) {
        self.containers.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.containers.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let layer = self.containers.last().map(String::as_str);
        if !matches!(layer, Some("Struct:Linear" | "Struct:Conv2d")) {
            return param;
        }
        let (id, tensor, _) = param.consume();
        let dims = tensor.dims();
        if D > 1 {
            // Linear: [in, out]; Conv2d: [out, in, k, k].
            self.fan_in = if D == 2 {
                dims[0]
            } else {
                dims[1..].iter().product()
            };
        }
        let bound = 1.0 / (self.fan_in as f64).sqrt();
        let values: Vec<f32> = (0..tensor.shape().num_elements())
            .map(|_| self.rng.random_range(-bound..bound) as f32)
            .collect();
        let fresh = Tensor::from_data(TensorData::new(values, dims), &tensor.device());
        Param::initialized(id, fresh.require_grad())
    }
}

fn zeros_like<B: Backend, const D: usize>(p: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
    p.map(|t| t.zeros_like().require_grad())
}

/// A scalar of (x_t, t, prompt): a small UNet's down path, mean-pooled over positions, then a
/// linear layer whose zero initialisation makes the network start at 0 (DAG's flow F_φ).
#[derive(Module, Debug)]
pub struct UNetFlowHead<B: Backend> {
    pub conv_in: Conv2d<B>,
    pub time_embedding: TimestepEmbedding<B>,
    pub down_blocks: Vec<UNetBlock<B>>,
    pub head: Linear<B>,
    #[module(skip)]
    pub time_proj_dim: usize,
}

impl<B: Backend> UNetFlowHead<B> {
    pub fn new(config: &UNetConfig, rng: &mut impl Rng, device: &B::Device) -> Self {
        let unet = random_init(config.init::<B>(device), rng);
        let last = *config
            .block_out_channels
            .last()
            .expect("at least one block");
        let head = super::blocks::linear(last, 1, true, device);
        Self {
            conv_in: unet.conv_in,
            time_embedding: unet.time_embedding,
            down_blocks: unet.down_blocks,
            head,
            time_proj_dim: unet.time_proj_dim,
        }
    }

    /// `[N]` for latents `[N, C, h, w]`, timesteps `[N]` and text context `[N, L, C_ctx]`.
    pub fn forward(
        &self,
        sample: Tensor<B, 4>,
        timesteps: Tensor<B, 1>,
        context: Tensor<B, 3>,
    ) -> Tensor<B, 1> {
        let emb = self
            .time_embedding
            .forward(timestep_features(timesteps, self.time_proj_dim, 0));
        let (x, _) = down_path(&self.conv_in, &self.down_blocks, sample, emb, context, None);
        let [n, c, h, w] = x.dims();
        let pooled = x.reshape([n, c, h * w]).mean_dim(2).reshape([n, c]);
        linear::forward(&self.head, pooled).reshape([n])
    }
}

/// A small UNet whose output layer starts at zero, so the field starts at 0 (∇-GFlowNet's
/// residual flow score g_φ).
#[derive(Module, Debug)]
pub struct UNetField<B: Backend> {
    pub unet: UNet2DConditionModel<B>,
}

impl<B: Backend> UNetField<B> {
    pub fn new(config: &UNetConfig, rng: &mut impl Rng, device: &B::Device) -> Self {
        let mut unet = random_init(config.init::<B>(device), rng);
        unet.conv_out.weight = zeros_like(unet.conv_out.weight);
        unet.conv_out.bias = unet.conv_out.bias.map(zeros_like);
        Self { unet }
    }

    pub fn forward(
        &self,
        sample: Tensor<B, 4>,
        timesteps: Tensor<B, 1>,
        context: Tensor<B, 3>,
    ) -> Tensor<B, 4> {
        self.unet.forward(sample, timesteps, context)
    }
}
