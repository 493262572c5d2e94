//! Networks and exact models: everything with weights or a closed-form density lives here,
//! below the environments, rewards and metrics that use it.

pub mod aesthetic_head;
pub mod attention;
pub mod bert;
pub mod blip;
pub mod clip;
pub mod conv;
pub mod dreamsim;
pub mod flex_kernels;
pub mod gelu;
pub mod image_reward;
pub mod inception;
pub mod layer_norm;
pub mod linear;
pub mod mixture;
pub mod mlp;
pub mod per_channel;
pub mod precision;
pub mod resize;
pub mod sd;
pub mod silu;
pub mod time_embedding;
pub mod weights;

pub use mixture::{Component, GaussianMixture, Point};
pub use mlp::Mlp;
pub use precision::{cast_module, Precision};
pub use time_embedding::sinusoidal_embedding;
pub use weights::{load_safetensors, LoadError};
