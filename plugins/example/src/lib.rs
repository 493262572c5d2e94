//! A plugin: an objective, a reward and a metric defined outside `bench`'s crates, registered
//! by name and run by `bench run` with no edit to the harness, the algorithms, the rewards or
//! the metrics.
//!
//! - `reinforce`: plain REINFORCE on whole trajectories with the batch-mean reward as
//!   baseline, ∇ E[r] = E[(r − b)·Σ_t ∇log p_θ(x_{t−1}|x_t)]; registered once, it trains on
//!   every environment (the toy and SD).
//! - `quadrant`: 1 in the upper-right quadrant of the toy's plane, else 0 — a reward without a
//!   gradient, as a classifier or a JPEG size is.
//! - `reward_above`: the fraction of evaluation samples whose reward exceeds a threshold, a
//!   column of `bench table` wherever a sweep lists it in `eval.metrics`.

use bench_core::validate::{self, Invalid, Validate};
use std::path::Path;

use burn::tensor::{
    backend::{AutodiffBackend, Backend},
    Tensor,
};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use bench_algorithms::optim::{OptimConfig, Trained};
use bench_algorithms::util::{scalar, vector};
use bench_algorithms::{Algorithm, Context, Objective, Scalars, TargetSpec};
use bench_core::stats::mean;
use bench_core::{BuildContext, NoParams, SampleKind};
use bench_envs::{Denoiser, DiffusionEnv, DiffusionModel};
use bench_metrics::{EvalContext, Metric, MetricPlugin, MetricSetup, SampleBatch};
use bench_rewards::{OnAnyBackend, Reward, RewardPlugin, TensorReward};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReinforceConfig {
    pub sample_batch: usize,
    pub optim: OptimConfig,
}

impl Default for ReinforceConfig {
    fn default() -> Self {
        Self {
            sample_batch: 32,
            optim: OptimConfig::default(),
        }
    }
}

impl Validate for ReinforceConfig {
    fn validate(&self) -> Result<(), Invalid> {
        validate::at_least("sample_batch", self.sample_batch, 2)?;
        self.optim.validate().map_err(|e| e.within("optim"))
    }
}

/// The objective's registry entry.
pub struct Reinforce;

impl Objective for Reinforce {
    type Params = ReinforceConfig;

    fn build<B: AutodiffBackend, E: DiffusionEnv<B> + 'static>(
        config: &ReinforceConfig,
        env: &E,
        rng: &mut StdRng,
    ) -> Result<Box<dyn Algorithm<B, E>>, String> {
        if config.sample_batch < 2 {
            return Err("sample_batch must be at least 2 (the baseline is the batch mean)".into());
        }
        Ok(Box::new(ReinforceRun {
            policy: Trained::new(env.init_policy(rng), config.optim.clone()),
            config: config.clone(),
        }))
    }
}

/// A REINFORCE run: the policy and its optimizer.
pub struct ReinforceRun<B: AutodiffBackend, E: DiffusionEnv<B>> {
    config: ReinforceConfig,
    policy: Trained<B, E::Policy>,
}

impl<B: AutodiffBackend, E: DiffusionEnv<B>> Algorithm<B, E> for ReinforceRun<B, E> {
    fn train_epoch(&mut self, ctx: &Context<'_, B, E>) -> Result<Scalars, String> {
        let env = ctx.env;
        let mut rng = ctx.rng("reinforce");
        let (traj, rewards) = ctx.sample(&self.policy.module, self.config.sample_batch, &mut rng);
        let baseline = mean(&rewards);
        let steps: Vec<usize> = (0..traj.num_steps()).collect();
        let s = traj.stack(&steps);
        let advantages: Vec<f64> = steps
            .iter()
            .flat_map(|_| rewards.iter().map(|r| r - baseline))
            .collect();
        let log_prob = env
            .train()
            .transition(
                Denoiser::Policy(&self.policy.module),
                s.x_t,
                &s.steps,
                &s.prompts,
            )
            .log_prob(s.x_next, env.scheduler().reduction());
        let loss = (log_prob * vector::<B>(&advantages, env.device()))
            .mean()
            .neg();
        let value = scalar(loss.clone().detach());
        let norm = self.policy.step(&mut loss.backward());
        Ok(vec![
            ("reward_mean".into(), baseline),
            ("loss".into(), value),
            ("grad_norm".into(), norm),
        ])
    }

    fn policy(&self) -> &E::Policy {
        &self.policy.module
    }

    fn target(&self, _env: &E) -> Option<TargetSpec> {
        None
    }

    fn save(&self, dir: &Path) -> Result<(), String> {
        self.policy.save(dir, "policy")
    }

    fn load(&mut self, dir: &Path) -> Result<(), String> {
        self.policy.load(dir, "policy")
    }
}

/// A reward without gradients: whether a sample lies in the upper-right quadrant, a step
/// function, as a black-box classifier or a JPEG size would be.
pub struct Quadrant;

impl TensorReward for Quadrant {
    fn name(&self) -> &str {
        "quadrant"
    }

    fn score<B: Backend>(&self, samples: Tensor<B, 4>, _prompts: &[String]) -> Tensor<B, 1> {
        let n = samples.dims()[0];
        let x = samples.reshape([n, 2]);
        x.greater_elem(0.0).float().prod_dim(1).reshape([n])
    }

    fn differentiable(&self) -> bool {
        false
    }
}

impl RewardPlugin for Quadrant {
    type Params = NoParams;
    const SAMPLES: SampleKind = SampleKind::Points2d;

    fn build<B: AutodiffBackend>(
        _params: &NoParams,
        _cx: &BuildContext<'_, B>,
    ) -> Result<Box<dyn Reward<B>>, String> {
        Ok(Box::new(OnAnyBackend(Quadrant)))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardAboveParams {
    /// Samples whose reward is above this count.
    pub threshold: f64,
}

impl Validate for RewardAboveParams {
    fn validate(&self) -> Result<(), Invalid> {
        validate::finite("threshold", self.threshold)
    }
}

/// The fraction of evaluation samples whose reward exceeds a threshold (`reward_above`).
pub struct RewardAbove {
    threshold: f64,
    above: usize,
    seen: usize,
}

impl MetricPlugin for RewardAbove {
    type Params = RewardAboveParams;
    const READS: &'static [SampleKind] = &[SampleKind::Points2d, SampleKind::Images];

    fn build<B: Backend>(
        params: &RewardAboveParams,
        _setup: &MetricSetup<'_, B>,
    ) -> Result<Box<dyn Metric<B>>, String> {
        if !params.threshold.is_finite() {
            return Err(format!("threshold = {} must be finite", params.threshold));
        }
        Ok(Box::new(Self {
            threshold: params.threshold,
            above: 0,
            seen: 0,
        }))
    }
}

impl<B: Backend> Metric<B> for RewardAbove {
    fn update(
        &mut self,
        batch: &SampleBatch<'_, B>,
        _cx: &mut EvalContext<'_>,
    ) -> Result<(), String> {
        self.seen += batch.rewards.len();
        self.above += batch
            .rewards
            .iter()
            .filter(|&&r| r > self.threshold)
            .count();
        Ok(())
    }

    fn finish(&mut self, _cx: &mut EvalContext<'_>) -> Result<Scalars, String> {
        let fraction = self.above as f64 / self.seen.max(1) as f64;
        (self.above, self.seen) = (0, 0);
        Ok(vec![("reward_above".into(), fraction)])
    }
}

/// The built-in plugins plus this crate's objective, reward and metric.
pub fn plugins() -> bench::Plugins {
    let mut plugins = bench::Plugins::default();
    plugins.objective::<Reinforce>(
        "reinforce",
        "REINFORCE on whole trajectories with a batch-mean baseline (plugin example)",
    );
    plugins.reward::<Quadrant>(
        "quadrant",
        "1 in the upper-right quadrant, else 0: not differentiable (plugin example)",
    );
    plugins.metric::<RewardAbove>(
        "reward_above",
        "fraction of evaluation samples whose reward exceeds `threshold` (plugin example)",
    );
    plugins
}
