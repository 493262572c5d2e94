//! Stable Diffusion v1's networks other than the text encoder (see [`crate::clip`]).

pub mod blocks;
pub mod vae;

pub use vae::{AutoencoderKl, DiagonalGaussian, VaeConfig};
