//! Stable Diffusion v1's networks other than the text encoder (see [`crate::clip`]).

pub mod aux_nets;
pub mod blocks;
pub mod components;
pub mod lora;
pub mod single_file;
pub mod unet;
pub mod vae;

pub use aux_nets::{AuxNetConfig, UNetField, UNetFlowHead};
pub use components::{ModelLayout, SdComponents};
pub use lora::{AttentionShape, BlockLayout, LoraConfig, LoraLayout, UNetLora, LORA_FILE};
pub use unet::{UNet2DConditionModel, UNetConfig};
pub use vae::{AutoencoderKl, DiagonalGaussian, VaeConfig};
