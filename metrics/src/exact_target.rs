//! `exact_target` on the toy: how close each prompt's samples are to exact samples of the
//! run's target distribution (MMD²), which of the target's modes they cover, and the total
//! variation between their mode weights and the target's; averaged over prompts (modes summed).

use std::sync::Arc;

use burn::tensor::backend::Backend;
use rand::rngs::StdRng;

use bench_core::validate::{self, Invalid, Validate};
use bench_core::SampleKind;
use bench_models::Point;
use bench_rewards::toy::ExactTarget;
use serde::{Deserialize, Serialize};

use crate::metric::{EvalContext, Metric, MetricSetup, SampleBatch, Scalars};
use crate::mmd::{mmd2_unbiased, DEFAULT_BANDWIDTHS};
use crate::modes::{mode_fractions, ModeReport};
use crate::points::keep_points;
use crate::registry::MetricPlugin;

/// MMD² and mode report of samples against a target (with as many exact samples).
pub fn compare_with_target(
    samples: &[Point],
    target: &ExactTarget,
    rng: &mut StdRng,
) -> (f64, ModeReport) {
    let exact = target.sample(samples.len(), rng);
    let mmd2 = mmd2_unbiased(samples, &exact, &DEFAULT_BANDWIDTHS);
    let report = ModeReport::new(
        &mode_fractions(samples, target.modes()),
        target.mode_weights(),
    );
    (mmd2, report)
}

/// The run's exact target for each prompt, or `None` when the run has none (no target, or a
/// reward without a closed form on the toy). Tabulating a target can take a while: it is done
/// once per process for every run, evaluation and metric that compares with it.
///
/// # Errors
/// An environment whose base model is not known exactly, or fewer than two samples per prompt
/// (a sample set is compared with exact samples by the unbiased MMD², which needs two a side).
pub fn exact_targets<B: Backend>(
    setup: &MetricSetup<'_, B>,
) -> Result<Option<Vec<Arc<ExactTarget>>>, String> {
    let (Some(spec), Some(toy)) = (setup.target, setup.toy_reward) else {
        return Ok(None);
    };
    if setup.samples_per_prompt < 2 {
        return Err(format!(
            "comparing with the exact target needs at least 2 samples per prompt \
             (eval.samples_per_prompt = {})",
            setup.samples_per_prompt
        ));
    }
    (0..setup.env.prompts().len())
        .map(|p| {
            let base = setup.env.exact_base(p).ok_or_else(|| {
                "comparing with an exact target needs an environment whose base model is known \
                 exactly (toy2d)"
                    .to_string()
            })?;
            let key = format!(
                "exact-target:{:?}:{}:{base:?}:{}:{}",
                spec.kind, spec.beta, setup.reward, setup.reward_params
            );
            setup.build.cache.get_or_load(&key, || {
                Ok(ExactTarget::new(spec.kind, &base, toy, spec.beta))
            })
        })
        .collect::<Result<Vec<_>, String>>()
        .map(Some)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExactTargetParams {
    /// Each prompt's first this many samples are compared (MMD² costs their square).
    pub max_points: usize,
}

impl Default for ExactTargetParams {
    fn default() -> Self {
        Self { max_points: 5000 }
    }
}

impl Validate for ExactTargetParams {
    fn validate(&self) -> Result<(), Invalid> {
        validate::at_least("max_points", self.max_points, 2)
    }
}

pub struct ExactTargetMetric {
    max_points: usize,
    /// One exact target per prompt; none when the run has no target (nothing is reported).
    targets: Option<Vec<Arc<ExactTarget>>>,
    current: Vec<Point>,
    mmds: Vec<f64>,
    tvs: Vec<f64>,
    covered: usize,
    modes: usize,
}

impl MetricPlugin for ExactTargetMetric {
    type Params = ExactTargetParams;
    const READS: &'static [SampleKind] = &[SampleKind::Points2d];

    fn build<B: Backend>(
        params: &ExactTargetParams,
        setup: &MetricSetup<'_, B>,
    ) -> Result<Box<dyn Metric<B>>, String> {
        let targets = exact_targets(setup)?;
        Ok(Box::new(Self {
            max_points: params.max_points,
            targets,
            current: vec![],
            mmds: vec![],
            tvs: vec![],
            covered: 0,
            modes: 0,
        }))
    }
}

impl<B: Backend> Metric<B> for ExactTargetMetric {
    fn update(
        &mut self,
        batch: &SampleBatch<'_, B>,
        _cx: &mut EvalContext<'_>,
    ) -> Result<(), String> {
        if self.targets.is_some() {
            keep_points(&mut self.current, batch.samples, self.max_points);
        }
        Ok(())
    }

    fn end_prompt(&mut self, prompt: usize, cx: &mut EvalContext<'_>) -> Result<(), String> {
        if let Some(targets) = &self.targets {
            let samples = std::mem::take(&mut self.current);
            let (mmd2, report) = compare_with_target(&samples, &targets[prompt], cx.rng);
            self.mmds.push(mmd2);
            self.tvs.push(report.total_variation);
            self.covered += report.covered;
            self.modes += report.target_modes;
        }
        Ok(())
    }

    fn finish(&mut self, _cx: &mut EvalContext<'_>) -> Result<Scalars, String> {
        if self.mmds.is_empty() {
            return Ok(vec![]);
        }
        let mean = bench_core::stats::mean;
        let out = vec![
            ("mmd2".into(), mean(&self.mmds)),
            ("modes_covered".into(), self.covered as f64),
            ("modes_total".into(), self.modes as f64),
            ("mode_tv".into(), mean(&self.tvs)),
        ];
        self.mmds.clear();
        self.tvs.clear();
        (self.covered, self.modes) = (0, 0);
        Ok(out)
    }
}
