//! LoRA on the UNet's attention projections (`to_q`, `to_k`, `to_v`, `to_out.0`): the policy
//! every SD objective trains, while the UNet itself stays frozen and shared.
//!
//! The adapter is a module of its own that mirrors the UNet's block structure, so that the base
//! model is the UNet called without it (LoRA off) and checkpoints hold only the adapter. Each
//! projection gains `scale · up(down(x))` with `scale = alpha / rank`; `up` starts at zero, so a
//! fresh adapter is the base model exactly (peft's default initialisation).
//!
//! Files use diffusers' names (`unet.<module>.lora.{down,up}.weight`, what
//! `StableDiffusionPipeline.save_lora_weights` writes); loading also accepts peft's
//! (`lora_A`/`lora_B`, optionally under `base_model.model.`) and the attention-processor names
//! older diffusers and DDPO's code write (`<attn>.processor.to_q_lora.down.weight`).

use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, SafetensorsStore};
use burn::tensor::{backend::Backend, Tensor, TensorData};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::linear;
use crate::precision::{to_dtype, to_precision_of};
use crate::weights::{load_safetensors_remapped, LoadError};

/// File name diffusers uses for LoRA weights.
pub const LORA_FILE: &str = "pytorch_lora_weights.safetensors";

/// Rank and strength of a LoRA (dropout-free).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoraConfig {
    pub rank: usize,
    /// The update is scaled by `alpha / rank` (DDPO, DAG: rank 4, alpha 4; ∇-GFlowNet rank 8).
    pub alpha: f64,
}

impl Default for LoraConfig {
    fn default() -> Self {
        Self {
            rank: 4,
            alpha: 4.0,
        }
    }
}

/// `down: in → rank` then `up: rank → out` (no biases), named as diffusers' `lora.down`/`lora.up`.
#[derive(Module, Debug)]
pub struct LoraPair<B: Backend> {
    pub down: Linear<B>,
    pub up: Linear<B>,
}

/// The four adapted projections of one attention layer.
#[derive(Module, Debug)]
pub struct LoraAttention<B: Backend> {
    pub to_q: LoraPair<B>,
    pub to_k: LoraPair<B>,
    pub to_v: LoraPair<B>,
    /// One entry, so that the key is diffusers' `to_out.0`.
    pub to_out: Vec<LoraPair<B>>,
}

/// Self- and cross-attention of one transformer block.
#[derive(Module, Debug)]
pub struct LoraTransformerBlock<B: Backend> {
    pub attn1: LoraAttention<B>,
    pub attn2: LoraAttention<B>,
}

#[derive(Module, Debug)]
pub struct LoraTransformer<B: Backend> {
    pub transformer_blocks: Vec<LoraTransformerBlock<B>>,
}

/// A UNet block's adapters (empty for blocks without attention).
#[derive(Module, Debug)]
pub struct LoraBlock<B: Backend> {
    pub attentions: Vec<LoraTransformer<B>>,
}

/// The shapes of the attention projections a LoRA adapts, as a UNet reports them
/// (`UNet2DConditionModel::lora_layout`): per block, per transformer, per transformer block,
/// its self- and cross-attention. The UNet calls its LoRA; this module knows only these shapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoraLayout {
    pub down_blocks: Vec<BlockLayout>,
    pub mid_block: BlockLayout,
    pub up_blocks: Vec<BlockLayout>,
}

/// One UNet block's attention layers: transformers × transformer blocks × (attn1, attn2).
pub type BlockLayout = Vec<Vec<[AttentionShape; 2]>>;

/// One attention layer's projection widths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionShape {
    /// Width of the queries' input (and of `to_out`'s output).
    pub query: usize,
    /// Width of the keys' and values' input (the text context for cross-attention).
    pub context: usize,
    /// Width of the projections' output.
    pub inner: usize,
}

/// A LoRA for a whole UNet ([`super::UNet2DConditionModel`]), block by block.
#[derive(Module, Debug)]
pub struct UNetLora<B: Backend> {
    pub down_blocks: Vec<LoraBlock<B>>,
    pub mid_block: LoraBlock<B>,
    pub up_blocks: Vec<LoraBlock<B>>,
    #[module(skip)]
    pub config: LoraConfig,
}

fn linear_from<B: Backend>(
    d_in: usize,
    d_out: usize,
    values: Vec<f32>,
    device: &B::Device,
) -> Linear<B> {
    Linear {
        weight: Param::from_tensor(Tensor::from_data(
            TensorData::new(values, [d_in, d_out]),
            device,
        )),
        bias: None,
    }
}

impl<B: Backend> LoraPair<B> {
    /// `down` uniform in ±1/√in (PyTorch's and peft's default for `lora_A`), `up` zero, drawn
    /// from the caller's RNG so that runs replay from their seed.
    fn new(d_in: usize, d_out: usize, rank: usize, rng: &mut impl Rng, device: &B::Device) -> Self {
        let bound = 1.0 / (d_in as f64).sqrt();
        let down = (0..d_in * rank)
            .map(|_| rng.random_range(-bound..bound) as f32)
            .collect();
        Self {
            down: linear_from(d_in, rank, down, device),
            up: linear_from(rank, d_out, vec![0.0; rank * d_out], device),
        }
    }

    /// The update `scale · up(down(x))`, computed in the LoRA's precision (f32 beside bf16 or
    /// f16 frozen weights) and returned in `x`'s.
    pub fn delta<const D: usize>(&self, x: Tensor<B, D>, scale: f64) -> Tensor<B, D> {
        let dtype = x.dtype();
        let x = to_precision_of(x, &self.down.weight.val());
        to_dtype(
            linear::forward(&self.up, linear::forward(&self.down, x)).mul_scalar(scale),
            dtype,
        )
    }
}

impl<B: Backend> UNetLora<B> {
    /// A fresh LoRA for a UNet's attention layers (`layout`) that leaves its output unchanged.
    pub fn new(
        layout: &LoraLayout,
        config: LoraConfig,
        rng: &mut impl Rng,
        device: &B::Device,
    ) -> Self {
        let r = config.rank;
        let mut block = |b: &BlockLayout| LoraBlock {
            attentions: b
                .iter()
                .map(|t| LoraTransformer {
                    transformer_blocks: t
                        .iter()
                        .map(|[attn1, attn2]| {
                            let mut attention = |a: &AttentionShape| LoraAttention {
                                to_q: LoraPair::new(a.query, a.inner, r, rng, device),
                                to_k: LoraPair::new(a.context, a.inner, r, rng, device),
                                to_v: LoraPair::new(a.context, a.inner, r, rng, device),
                                to_out: vec![LoraPair::new(a.inner, a.query, r, rng, device)],
                            };
                            LoraTransformerBlock {
                                attn1: attention(attn1),
                                attn2: attention(attn2),
                            }
                        })
                        .collect(),
                })
                .collect(),
        };
        Self {
            down_blocks: layout.down_blocks.iter().map(&mut block).collect(),
            mid_block: block(&layout.mid_block),
            up_blocks: layout.up_blocks.iter().map(&mut block).collect(),
            config,
        }
    }

    pub fn scale(&self) -> f64 {
        self.config.alpha / self.config.rank as f64
    }

    /// Loads a LoRA file (diffusers, peft or attention-processor names; see the module doc)
    /// into a LoRA shaped by `layout`. diffusers' files carry no alpha, so the file's update is
    /// taken at scale 1 (`alpha = rank`), as diffusers does; pass `alpha` to override.
    pub fn load(
        layout: &LoraLayout,
        file: &Path,
        alpha: Option<f64>,
        device: &B::Device,
    ) -> Result<Self, LoadError> {
        let rank = file_rank(file)?;
        let config = LoraConfig {
            rank,
            alpha: alpha.unwrap_or(rank as f64),
        };
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
        let lora = Self::new(layout, config, &mut rng, device);
        load_safetensors_remapped(lora, file, &LOAD_REMAP)
    }

    /// Writes the LoRA with diffusers' key names (`unet.<module>.lora.{down,up}.weight`), so
    /// that `pipe.load_lora_weights(dir)` reads it. The scale is folded into `up` (diffusers'
    /// files have no alpha), so the file means the same update in diffusers and here.
    pub fn save(&self, file: &Path) -> Result<(), String> {
        let scale = self.scale();
        let folded = self.clone().map_pairs(|p| p.folded(scale));
        let mut store = SafetensorsStore::from_file(file)
            .with_to_adapter(BurnToPyTorchAdapter)
            .overwrite(true)
            .metadata("format", "pt")
            .with_key_remapping(r"^(.*)\.(down|up)\.weight$", "unet.$1.lora.$2.weight");
        folded
            .save_into(&mut store)
            .map_err(|e| format!("cannot write {}: {e}", file.display()))
    }
}

/// File keys → module keys, applied in order (see the module doc for the three conventions).
const LOAD_REMAP: [(&str, &str); 6] = [
    (r"^(base_model\.model\.|unet\.)", ""),
    (r"\.processor\.to_out_lora\.", ".to_out.0.lora."),
    (r"\.processor\.(to_q|to_k|to_v)_lora\.", ".$1.lora."),
    (r"\.lora_A(\.default)?\.weight$", ".lora.down.weight"),
    (r"\.lora_B(\.default)?\.weight$", ".lora.up.weight"),
    (r"\.lora\.(down|up)\.weight$", ".$1.weight"),
];

/// The rank of a LoRA file: the first dimension of its first down (`lora_A`) matrix, read from
/// the safetensors header alone (the tensors are read once, by the loader).
fn file_rank(file: &Path) -> Result<usize, LoadError> {
    let header = crate::weights::read_header(file).map_err(|e| match e {
        LoadError::MissingFile { paths, .. } => LoadError::MissingFile {
            what: "LoRA weights".into(),
            paths,
        },
        other => other,
    })?;
    header
        .iter()
        .find(|(name, _)| name.contains("lora.down") || name.contains("lora_A"))
        .and_then(|(_, info)| info.shape.first().copied())
        .ok_or_else(|| LoadError::Read {
            path: file.to_path_buf(),
            message: "no LoRA down (lora_A) matrix in the file".into(),
        })
}

impl<B: Backend> LoraPair<B> {
    fn folded(self, scale: f64) -> Self {
        Self {
            down: self.down,
            up: Linear {
                weight: self.up.weight.map(|w| w.mul_scalar(scale)),
                bias: None,
            },
        }
    }
}

impl<B: Backend> LoraAttention<B> {
    fn map_pairs(self, f: &mut impl FnMut(LoraPair<B>) -> LoraPair<B>) -> Self {
        Self {
            to_q: f(self.to_q),
            to_k: f(self.to_k),
            to_v: f(self.to_v),
            to_out: self.to_out.into_iter().map(&mut *f).collect(),
        }
    }
}

impl<B: Backend> LoraBlock<B> {
    fn map_pairs(self, f: &mut impl FnMut(LoraPair<B>) -> LoraPair<B>) -> Self {
        Self {
            attentions: self
                .attentions
                .into_iter()
                .map(|t| LoraTransformer {
                    transformer_blocks: t
                        .transformer_blocks
                        .into_iter()
                        .map(|b| LoraTransformerBlock {
                            attn1: b.attn1.map_pairs(f),
                            attn2: b.attn2.map_pairs(f),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

impl<B: Backend> UNetLora<B> {
    /// Applies `f` to every adapted projection.
    fn map_pairs(self, mut f: impl FnMut(LoraPair<B>) -> LoraPair<B>) -> Self {
        Self {
            down_blocks: self
                .down_blocks
                .into_iter()
                .map(|b| b.map_pairs(&mut f))
                .collect(),
            mid_block: self.mid_block.map_pairs(&mut f),
            up_blocks: self
                .up_blocks
                .into_iter()
                .map(|b| b.map_pairs(&mut f))
                .collect(),
            config: self.config,
        }
    }
}
