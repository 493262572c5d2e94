//! `fid_diversity` (DAG, §5 and Table 1): the FID between two batches of one policy's images,
//! sampled independently — higher is more diverse, since a policy that collapses onto a few
//! images gives two batches with nearly the same statistics.
//!
//! DAG draws two batches of 2048 images over its prompts. Here each prompt gets
//! `2·⌈images / prompts⌉` samples, alternately assigned to the two batches, so both batches hold
//! every prompt equally often (`images` each when the prompt count divides it). The samples are
//! independent draws, so any fixed split gives two independent batches.

use std::path::PathBuf;

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use bench_core::validate::{self, Invalid, Validate};
use bench_core::SampleKind;
use bench_models::inception::FidResize;

use crate::frechet::frechet_distance_of_features;
use crate::inception_features::{default_weights, widen, InceptionFeatures, FEATURES};
use crate::metric::{EvalContext, EvalPoint, Metric, MetricSetup, Needs, SampleBatch, Scalars};
use crate::registry::MetricPlugin;
use crate::schedule::When;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FidDiversityParams {
    /// Images in each of the two batches (DAG: 2048), spread evenly over the prompts.
    pub images: usize,
    /// pytorch-fid's Inception weights.
    pub weights: PathBuf,
    /// pytorch-fid's resize to 299² (default) or clean-fid's.
    pub resize: FidResize,
    /// At which evaluations (4096 images through Inception is expensive).
    pub when: When,
}

impl Default for FidDiversityParams {
    fn default() -> Self {
        Self {
            images: 2048,
            weights: default_weights(),
            resize: FidResize::PytorchFid,
            when: When::default(),
        }
    }
}

impl Validate for FidDiversityParams {
    fn validate(&self) -> Result<(), Invalid> {
        validate::at_least("images", self.images, 2)
    }
}

pub struct FidDiversity<B: Backend> {
    network: InceptionFeatures<B>,
    when: When,
    per_prompt: usize,
    /// The two batches' feature rows.
    batches: [Vec<f32>; 2],
}

/// The plugin (its metric, [`FidDiversity`], lives on the evaluation's backend).
pub struct FidDiversityMetric;

impl MetricPlugin for FidDiversityMetric {
    type Params = FidDiversityParams;
    const READS: &'static [SampleKind] = &[SampleKind::Images];

    fn build<B: Backend>(
        params: &FidDiversityParams,
        setup: &MetricSetup<'_, B>,
    ) -> Result<Box<dyn Metric<B>>, String> {
        let prompts = setup.env.prompts().len().max(1);
        // Both batches' f32 rows, their f64 copies and the two d × d covariances.
        let rows = 2.0 * params.images.div_ceil(prompts) as f64 * prompts as f64;
        let d = FEATURES as f64;
        validate::fits_in_memory(
            &format!("fid_diversity with images = {}", params.images),
            rows * d * 12.0 + 2.0 * d * d * 8.0,
        )?;
        Ok(Box::new(FidDiversity {
            network: InceptionFeatures::load(&params.weights, params.resize, &setup.build)?,
            when: params.when,
            per_prompt: params.images.div_ceil(prompts).saturating_mul(2),
            batches: [vec![], vec![]],
        }))
    }
}

impl<B: Backend> Metric<B> for FidDiversity<B> {
    fn needs(&mut self, at: &EvalPoint<'_>) -> Result<Option<Needs>, String> {
        Ok(self.when.includes(at).then_some(Needs {
            samples_per_prompt: Some(self.per_prompt),
            base: false,
        }))
    }

    fn update(
        &mut self,
        batch: &SampleBatch<'_, B>,
        cx: &mut EvalContext<'_>,
    ) -> Result<(), String> {
        let features = self.network.of_batch(batch, cx, false)?;
        for (i, row) in features.chunks_exact(FEATURES).enumerate() {
            self.batches[(batch.first + i) % 2].extend_from_slice(row);
        }
        Ok(())
    }

    fn finish(&mut self, _cx: &mut EvalContext<'_>) -> Result<Scalars, String> {
        let [a, b] = std::mem::take(&mut self.batches);
        let (na, nb) = (a.len() / FEATURES, b.len() / FEATURES);
        let fid = frechet_distance_of_features(&widen(&a), na, &widen(&b), nb, FEATURES)
            .map_err(|e| format!("fid_diversity: {e}"))?;
        Ok(vec![("fid_diversity".into(), fid)])
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::tensor::{Distribution, Tensor};
    use rand::SeedableRng;

    use super::*;

    /// FID between two batches of `images` each, fed as one prompt in batches of 3.
    fn fid_of(metric: &mut FidDiversity<Flex>, images: Tensor<Flex, 4>) -> f64 {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let mut cx = EvalContext {
            epoch: 0,
            rng: &mut rng,
            state_dir: &dir.path().join("metrics/fid_diversity"),
            samples_dir: dir.path(),
        };
        let n = images.dims()[0];
        for first in (0..n).step_by(3) {
            let samples = images.clone().narrow(0, first, 3.min(n - first));
            let rewards = vec![0.0; samples.dims()[0]];
            let batch = SampleBatch {
                prompt: 0,
                prompt_text: "p",
                first,
                samples: &samples,
                rewards: &rewards,
                base: None,
            };
            metric.update(&batch, &mut cx).unwrap();
        }
        metric.finish(&mut cx).unwrap()[0].1
    }

    #[test]
    fn a_collapsed_policy_has_a_lower_fid_between_its_batches() {
        let device = Default::default();
        let mut metric = FidDiversity {
            network: crate::inception_features::deterministic::<Flex>(&device),
            when: When::Every,
            per_prompt: 12,
            batches: [vec![], vec![]],
        };
        let shape = [12, 3, 16, 16];
        let diverse = Tensor::<Flex, 4>::random(shape, Distribution::Uniform(0.0, 1.0), &device);
        // One image, with a little noise: what a policy collapsed on one mode samples.
        let one =
            Tensor::<Flex, 4>::random([1, 3, 16, 16], Distribution::Uniform(0.0, 1.0), &device);
        let noise = Tensor::<Flex, 4>::random(shape, Distribution::Uniform(-0.01, 0.01), &device);
        let collapsed = one.repeat_dim(0, 12) + noise;
        let high = fid_of(&mut metric, diverse);
        let low = fid_of(&mut metric, collapsed);
        assert!(high > 0.0 && low >= 0.0, "{high} {low}");
        assert!(low < 0.01 * high, "collapsed {low} vs diverse {high}");
    }
}
