//! Metrics. On the toys: MMD to exact target samples, mode coverage and the total variation of
//! mode weights, and sample diversity.

pub mod diversity;
pub mod mmd;
pub mod modes;

pub use diversity::mean_pairwise_distance;
pub use mmd::{mmd2_unbiased, DEFAULT_BANDWIDTHS};
pub use modes::{mode_fractions, ModeReport};
