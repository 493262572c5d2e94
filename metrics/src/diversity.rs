//! Sample diversity on the toy: the mean pairwise Euclidean distance of each prompt's samples,
//! averaged over prompts (meaningful for 2-D points; images need a feature space).

use bench_core::validate::{self, Invalid, Validate};
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use bench_core::SampleKind;
use bench_models::Point;

use crate::metric::{EvalContext, Metric, MetricSetup, SampleBatch, Scalars};
use crate::points::keep_points;
use crate::registry::MetricPlugin;

/// Mean distance over all pairs of the first `max_points` samples.
pub fn mean_pairwise_distance(samples: &[Point], max_points: usize) -> f64 {
    let x = &samples[..samples.len().min(max_points)];
    if x.len() < 2 {
        return 0.0;
    }
    let mut s = 0.0;
    for i in 0..x.len() {
        for j in i + 1..x.len() {
            s += ((x[i][0] - x[j][0]).powi(2) + (x[i][1] - x[j][1]).powi(2)).sqrt();
        }
    }
    2.0 * s / (x.len() * (x.len() - 1)) as f64
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiversityParams {
    /// Pairs are taken among each prompt's first this many samples (the cost is quadratic).
    pub max_points: usize,
}

impl Default for DiversityParams {
    fn default() -> Self {
        Self { max_points: 1000 }
    }
}

impl Validate for DiversityParams {
    fn validate(&self) -> Result<(), Invalid> {
        validate::at_least("max_points", self.max_points, 2)
    }
}

pub struct DiversityMetric {
    params: DiversityParams,
    current: Vec<Point>,
    per_prompt: Vec<f64>,
}

impl MetricPlugin for DiversityMetric {
    type Params = DiversityParams;
    const READS: &'static [SampleKind] = &[SampleKind::Points2d];

    fn build<B: Backend>(
        params: &DiversityParams,
        _setup: &MetricSetup<'_, B>,
    ) -> Result<Box<dyn Metric<B>>, String> {
        if params.max_points < 2 {
            return Err(format!(
                "max_points = {} must be at least 2",
                params.max_points
            ));
        }
        Ok(Box::new(Self {
            params: params.clone(),
            current: vec![],
            per_prompt: vec![],
        }))
    }
}

impl<B: Backend> Metric<B> for DiversityMetric {
    fn update(
        &mut self,
        batch: &SampleBatch<'_, B>,
        _cx: &mut EvalContext<'_>,
    ) -> Result<(), String> {
        keep_points(&mut self.current, batch.samples, self.params.max_points);
        Ok(())
    }

    fn end_prompt(&mut self, _prompt: usize, _cx: &mut EvalContext<'_>) -> Result<(), String> {
        let samples = std::mem::take(&mut self.current);
        self.per_prompt
            .push(mean_pairwise_distance(&samples, self.params.max_points));
        Ok(())
    }

    fn finish(&mut self, _cx: &mut EvalContext<'_>) -> Result<Scalars, String> {
        let d = bench_core::stats::mean(&self.per_prompt);
        self.per_prompt.clear();
        Ok(vec![("diversity".into(), d)])
    }
}
