//! `target_shape` on the toy: *how* samples miss the run's exact target, where `exact_target`'s
//! single MMD² says only how far. The detailed-balance objectives plateau on `toy2d` in a state
//! that keeps the base model's tight modes and reweights them (shared/research/db-toy-audit.md):
//! the mean moves, the clumps stay. These columns show that state for what it is:
//!
//! - `mmd2_bw<h>`: MMD² with each kernel bandwidth alone (small ones see clumps, large ones the
//!   spread; their sum is `exact_target`'s MMD² up to sampling);
//! - `mean_err`, `cov_err`: distance of the samples' mean and covariance (Frobenius) to the
//!   target's exact ones; `spread`: the samples' total variance over the target's (< 1:
//!   under-dispersed);
//! - `clumping`: the samples' mass within `clump_radius` standard deviations of the base model's
//!   modes, over the target's exact mass there (1: as the target; ≫ 1: the base's clumps kept).
//!
//! Each is averaged over prompts. Opt-in (`eval.metrics`), so default tables do not change.

use std::sync::Arc;

use burn::tensor::backend::Backend;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use bench_core::validate::{self, Invalid, Validate};
use bench_core::SampleKind;
use bench_models::{GaussianMixture, Point};
use bench_rewards::toy::ExactTarget;

use crate::exact_target::exact_targets;
use crate::metric::{EvalContext, Metric, MetricSetup, SampleBatch, Scalars};
use crate::mmd::{mmd2_unbiased_each, DEFAULT_BANDWIDTHS};
use crate::moments::Moments;
use crate::points::keep_points;
use crate::registry::MetricPlugin;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TargetShapeParams {
    /// Each prompt's first this many samples are compared (MMD² costs their square).
    pub max_points: usize,
    /// The kernel bandwidths, one column each (default: `exact_target`'s).
    pub bandwidths: Vec<f64>,
    /// The radius around each base mode, in units of that mode's standard deviation.
    pub clump_radius: f64,
}

impl Default for TargetShapeParams {
    fn default() -> Self {
        Self {
            max_points: 2000,
            bandwidths: DEFAULT_BANDWIDTHS.to_vec(),
            clump_radius: 1.0,
        }
    }
}

impl Validate for TargetShapeParams {
    fn validate(&self) -> Result<(), Invalid> {
        validate::at_least("max_points", self.max_points, 2)?;
        validate::count_within("bandwidths", self.bandwidths.len(), 1, 16)?;
        for &h in &self.bandwidths {
            validate::positive("bandwidths", h)?;
        }
        validate::positive("clump_radius", self.clump_radius)
    }
}

/// What is known of one prompt's target before any sample is seen.
struct PromptTarget {
    target: Arc<ExactTarget>,
    moments: Moments,
    /// The base model's modes, the disks around which mass is measured.
    base: GaussianMixture,
    /// The target's exact mass in those disks.
    clump_mass: f64,
}

impl PromptTarget {
    fn new(target: Arc<ExactTarget>, base: GaussianMixture, radius: f64) -> Self {
        let moments = match target.closed_form() {
            Some(m) => Moments::of_mixture(m),
            None => Moments::of_weighted(&target.grid().cells().collect::<Vec<_>>()),
        };
        let clump_mass = target
            .grid()
            .cells()
            .filter(|&(x, _)| near_a_mode(x, &base, radius))
            .map(|(_, m)| m)
            .sum();
        Self {
            target,
            moments,
            base,
            clump_mass,
        }
    }
}

/// Whether `x` lies within `radius` standard deviations of one of `modes`' means.
fn near_a_mode(x: Point, modes: &GaussianMixture, radius: f64) -> bool {
    modes
        .components()
        .iter()
        .any(|c| (x[0] - c.mean[0]).hypot(x[1] - c.mean[1]) <= radius * c.std)
}

pub struct TargetShapeMetric {
    params: TargetShapeParams,
    targets: Option<Vec<PromptTarget>>,
    current: Vec<Point>,
    /// Per prompt: the MMD² per bandwidth, then mean error, covariance error, spread, clumping.
    per_prompt: Vec<Vec<f64>>,
}

impl MetricPlugin for TargetShapeMetric {
    type Params = TargetShapeParams;
    const READS: &'static [SampleKind] = &[SampleKind::Points2d];

    fn build<B: Backend>(
        params: &TargetShapeParams,
        setup: &MetricSetup<'_, B>,
    ) -> Result<Box<dyn Metric<B>>, String> {
        let targets = exact_targets(setup)?
            .map(|targets| {
                targets
                    .into_iter()
                    .enumerate()
                    .map(|(p, t)| {
                        let base = setup.env.exact_base(p).ok_or("no exact base model")?;
                        Ok(PromptTarget::new(t, base, params.clump_radius))
                    })
                    .collect::<Result<Vec<_>, String>>()
            })
            .transpose()?;
        Ok(Box::new(Self {
            params: params.clone(),
            targets,
            current: vec![],
            per_prompt: vec![],
        }))
    }
}

impl TargetShapeMetric {
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .params
            .bandwidths
            .iter()
            .map(|h| format!("mmd2_bw{h}"))
            .collect();
        names.extend(["mean_err", "cov_err", "spread", "clumping"].map(String::from));
        names
    }
}

/// The values of one prompt, in the order of [`TargetShapeMetric::names`].
fn shape(
    samples: &[Point],
    t: &PromptTarget,
    params: &TargetShapeParams,
    rng: &mut StdRng,
) -> Vec<f64> {
    let exact = t.target.sample(samples.len(), rng);
    let mut out = mmd2_unbiased_each(samples, &exact, &params.bandwidths);
    let moments = Moments::of_points(samples);
    let near = samples
        .iter()
        .filter(|&&x| near_a_mode(x, &t.base, params.clump_radius))
        .count() as f64
        / samples.len() as f64;
    out.extend([
        moments.mean_distance(&t.moments),
        moments.cov_distance(&t.moments),
        moments.spread() / t.moments.spread(),
        // The target has mass everywhere its grid covers the base; the floor only keeps a
        // far-off target's ratio finite.
        near / t.clump_mass.max(1e-9),
    ]);
    out
}

impl<B: Backend> Metric<B> for TargetShapeMetric {
    fn update(
        &mut self,
        batch: &SampleBatch<'_, B>,
        _cx: &mut EvalContext<'_>,
    ) -> Result<(), String> {
        if self.targets.is_some() {
            keep_points(&mut self.current, batch.samples, self.params.max_points);
        }
        Ok(())
    }

    fn end_prompt(&mut self, prompt: usize, cx: &mut EvalContext<'_>) -> Result<(), String> {
        let samples = std::mem::take(&mut self.current);
        if let Some(targets) = &self.targets {
            self.per_prompt
                .push(shape(&samples, &targets[prompt], &self.params, cx.rng));
        }
        Ok(())
    }

    fn finish(&mut self, _cx: &mut EvalContext<'_>) -> Result<Scalars, String> {
        if self.per_prompt.is_empty() {
            return Ok(vec![]);
        }
        let rows = std::mem::take(&mut self.per_prompt);
        Ok(self
            .names()
            .into_iter()
            .enumerate()
            .map(|(k, name)| {
                let column: Vec<f64> = rows.iter().map(|r| r[k]).collect();
                (name, bench_core::stats::mean(&column))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bench_rewards::toy::{Bump, BumpConfig, TargetKind};
    use rand::SeedableRng;

    /// `ring8`'s modes against the bump's exp(r) target (one Gaussian of std 0.5).
    fn bump_on_ring8() -> PromptTarget {
        let base = GaussianMixture::ring(8, 1.0, 0.1);
        let bump = Bump::new(BumpConfig::default()).unwrap();
        let target = ExactTarget::new(TargetKind::Power, &base, &bump, 1.0);
        PromptTarget::new(Arc::new(target), base, 1.0)
    }

    #[test]
    fn exact_samples_match_and_the_base_is_seen_clumped() {
        let t = bump_on_ring8();
        let params = TargetShapeParams::default();
        let n = params.max_points;
        let mut rng = StdRng::seed_from_u64(0);
        // The bump's target is N((0.6, 0.6), 0.25 I): its moments are exact.
        assert!(
            (t.moments.mean[0] - 0.6).abs() < 1e-12 && (t.moments.spread() - 0.5).abs() < 1e-12
        );
        let exact = t.target.sample(n, &mut rng);
        let at_target = shape(&exact, &t, &params, &mut rng);
        let k = params.bandwidths.len();
        for (h, m) in params.bandwidths.iter().zip(&at_target[..k]) {
            assert!(m.abs() < 0.01, "MMD² at bandwidth {h}: {m}");
        }
        let [mean_err, cov_err, spread, clumping] = at_target[k..] else {
            unreachable!()
        };
        assert!(mean_err < 0.05 && cov_err < 0.05, "{at_target:?}");
        assert!((spread - 1.0).abs() < 0.1, "{at_target:?}");
        assert!((clumping - 1.0).abs() < 0.15, "{at_target:?}");
        // The base's own samples: tight modes where the target has little mass.
        let base = t.base.sample(n, &mut rng);
        let at_base = shape(&base, &t, &params, &mut rng);
        assert!(at_base[k + 3] > 3.0, "clumping {at_base:?}");
        assert!(at_base[k] > 0.5, "mean error {at_base:?}");
        assert!(at_base[0] > 10.0 * at_target[0].abs(), "{at_base:?}");
    }
}
