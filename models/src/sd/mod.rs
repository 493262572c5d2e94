//! Stable Diffusion v1's networks other than the text encoder (see [`crate::clip`]).

pub mod blocks;
pub mod unet;
pub mod vae;

pub use unet::{UNet2DConditionModel, UNetConfig};
pub use vae::{AutoencoderKl, DiagonalGaussian, VaeConfig};
