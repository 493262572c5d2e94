//! Metrics by name: each a [`MetricPlugin`] (typed parameters, the sample kinds it reads, a
//! factory), registered once and built per run from its resolved parameters.

use burn::tensor::backend::Backend;

use bench_core::params::from_resolved;
use bench_core::{Params, ParamsCodec, Registry, SampleKind};

use crate::metric::{Metric, MetricSetup};

/// A metric as a plugin.
pub trait MetricPlugin: 'static {
    /// Its parameters (`(name: "...", params: (...))` in a sweep's `eval.metrics`).
    type Params: Params;
    /// The sample kinds it reads; pairing it with an environment that produces another kind
    /// is refused when the sweep is planned.
    const READS: &'static [SampleKind];

    /// # Errors
    /// Parameters out of range, or a run it cannot serve, in words for the user.
    fn build<B: Backend>(
        params: &Self::Params,
        setup: &MetricSetup<'_, B>,
    ) -> Result<Box<dyn Metric<B>>, String>;
}

type Build<B> = fn(&str, &MetricSetup<'_, B>) -> Result<Box<dyn Metric<B>>, String>;

/// A registered metric, its types erased.
pub struct MetricEntry<B: Backend> {
    pub params: ParamsCodec,
    pub reads: &'static [SampleKind],
    build: Build<B>,
}

fn build_from<M: MetricPlugin, B: Backend>(
    resolved: &str,
    setup: &MetricSetup<'_, B>,
) -> Result<Box<dyn Metric<B>>, String> {
    M::build(&from_resolved::<M::Params>(resolved)?, setup)
}

impl<B: Backend> MetricEntry<B> {
    pub fn of<M: MetricPlugin>() -> Self {
        Self {
            params: ParamsCodec::of::<M::Params>(),
            reads: M::READS,
            build: build_from::<M, B>,
        }
    }

    /// Builds from resolved parameters.
    ///
    /// # Errors
    /// As [`MetricPlugin::build`].
    pub fn build(
        &self,
        resolved: &str,
        setup: &MetricSetup<'_, B>,
    ) -> Result<Box<dyn Metric<B>>, String> {
        (self.build)(resolved, setup)
    }
}

/// Metrics by name. Plugins add theirs with
/// `registry.register(name, about, MetricEntry::of::<MyMetric>())`.
pub type MetricRegistry<B> = Registry<MetricEntry<B>>;

/// The built-in metrics.
pub fn builtin_metrics<B: Backend>() -> MetricRegistry<B> {
    let mut r = Registry::new("metric");
    r.register(
        "reward",
        "mean reward of the evaluation samples (and, with `std: true`, their standard deviation)",
        MetricEntry::of::<crate::reward_metric::RewardMetric>(),
    );
    r.register(
        "exact_target",
        "toy2d: MMD² to exact samples of the run's target, mode coverage and mode-weight TV",
        MetricEntry::of::<crate::exact_target::ExactTargetMetric>(),
    );
    r.register(
        "target_shape",
        "toy2d: how samples miss the exact target: MMD² per bandwidth, mean and covariance \
         errors, spread ratio, clumping on the base's modes",
        MetricEntry::of::<crate::target_shape::TargetShapeMetric>(),
    );
    r.register(
        "diversity",
        "toy2d: mean pairwise distance of each prompt's samples, averaged over prompts",
        MetricEntry::of::<crate::diversity::DiversityMetric>(),
    );
    r.register(
        "image_grid",
        "images: a PNG grid of each evaluation's first samples (a row per prompt), no scalar",
        MetricEntry::of::<crate::image_grid::ImageGrid>(),
    );
    r.register(
        "fid_diversity",
        "images (DAG): FID between two independently sampled batches of the policy (default \
         2048 + 2048 images), higher = more diverse",
        MetricEntry::of::<crate::fid_diversity::FidDiversityMetric>(),
    );
    r.register(
        "per_prompt_fid",
        "images (∇-GFlowNet): per prompt, FID between the base model's and the policy's images \
         (default 64 each), averaged over prompts; lower = closer to the base",
        MetricEntry::of::<crate::per_prompt_fid::PerPromptFidMetric>(),
    );
    r.register(
        "image_diversity",
        "images (PAG): mean pairwise distance (cosine by default) of each prompt's Inception \
         features, averaged over prompts",
        MetricEntry::of::<crate::image_diversity::ImageDiversityMetric>(),
    );
    r.register(
        "dreamsim",
        "images (∇-GFlowNet): mean pairwise DreamSim distance within each prompt's images \
         (default 64), averaged over prompts; higher = more diverse",
        MetricEntry::of::<crate::dreamsim_diversity::DreamSimMetric>(),
    );
    r
}

/// The metrics an environment's runs report when a sweep names none: on the toy, reward,
/// exact-target and diversity; on images, reward with its spread and a grid.
pub fn default_metrics(kind: SampleKind) -> Vec<(&'static str, &'static str)> {
    match kind {
        SampleKind::Points2d => vec![
            ("reward", "()"),
            ("exact_target", "()"),
            ("diversity", "()"),
        ],
        SampleKind::Images => vec![("reward", "(std: true)"), ("image_grid", "()")],
        SampleKind::Text => vec![("reward", "(std: true)")],
    }
}
