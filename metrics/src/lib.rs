//! Evaluation metrics: the [`Metric`] trait (`update` on batches of samples, `finish` to
//! scalars) and its registry, with the built-in metrics — reward statistics; on the toy, MMD²
//! to exact target samples, mode coverage and the total variation of mode weights, and sample
//! diversity, and (opt-in) how samples miss the target: MMD² per bandwidth, moment errors,
//! clumping on the base's modes; on images, a grid of samples and the papers' Inception metrics
//! (FID between two batches, per-prompt FID against the base model, feature diversity) and
//! DreamSim diversity — and
//! the math under them.

pub mod diversity;
pub mod dreamsim_diversity;
pub mod exact_target;
pub mod fid_diversity;
pub mod frechet;
pub mod image_diversity;
pub mod image_grid;
pub mod images;
pub mod inception_features;
pub mod metric;
pub mod mmd;
pub mod modes;
pub mod moments;
pub mod pairwise;
pub mod per_prompt_fid;
pub mod points;
pub mod registry;
pub mod reward_metric;
pub mod schedule;
pub mod target_shape;

pub use diversity::mean_pairwise_distance;
pub use metric::{EvalContext, EvalPoint, Metric, MetricSetup, Needs, SampleBatch, Scalars};
pub use mmd::{mmd2_unbiased, mmd2_unbiased_each, DEFAULT_BANDWIDTHS};
pub use modes::{mode_fractions, ModeReport};
pub use moments::Moments;
pub use registry::{builtin_metrics, default_metrics, MetricEntry, MetricPlugin, MetricRegistry};
pub use schedule::When;
