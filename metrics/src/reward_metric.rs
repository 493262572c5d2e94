//! `reward`: the mean reward of an evaluation's samples, over every prompt, and optionally its
//! sample standard deviation, in constant memory.

use bench_core::Validate;
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use bench_core::stats::Running;
use bench_core::SampleKind;

use crate::metric::{EvalContext, Metric, MetricSetup, SampleBatch, Scalars};
use crate::registry::MetricPlugin;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardParams {
    /// Also report `reward_std`, the spread over samples (not over seeds).
    pub std: bool,
}

impl Validate for RewardParams {}

pub struct RewardMetric {
    params: RewardParams,
    running: Running,
}

impl MetricPlugin for RewardMetric {
    type Params = RewardParams;
    const READS: &'static [SampleKind] =
        &[SampleKind::Points2d, SampleKind::Images, SampleKind::Text];

    fn build<B: Backend>(
        params: &RewardParams,
        _setup: &MetricSetup<'_, B>,
    ) -> Result<Box<dyn Metric<B>>, String> {
        Ok(Box::new(Self {
            params: params.clone(),
            running: Running::default(),
        }))
    }
}

impl<B: Backend> Metric<B> for RewardMetric {
    fn update(
        &mut self,
        batch: &SampleBatch<'_, B>,
        _cx: &mut EvalContext<'_>,
    ) -> Result<(), String> {
        batch.rewards.iter().for_each(|&r| self.running.push(r));
        Ok(())
    }

    fn finish(&mut self, _cx: &mut EvalContext<'_>) -> Result<Scalars, String> {
        let r = std::mem::take(&mut self.running);
        let mut out = vec![("reward".to_string(), r.mean())];
        if self.params.std {
            out.push(("reward_std".to_string(), r.sample_std()));
        }
        Ok(out)
    }
}
