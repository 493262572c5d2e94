//! A plugin: a finetuning objective defined outside `bench-algorithms`, registered by name and
//! run by `bench run` with no edit to the harness or the algorithms crate.
//!
//! The objective is plain REINFORCE on whole trajectories with the batch-mean reward as
//! baseline: ∇ E[r] = E[(r − b)·Σ_t ∇log p_θ(x_{t−1}|x_t)].

use std::path::Path;

use burn::tensor::backend::AutodiffBackend;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use bench_algorithms::optim::{OptimConfig, Trained};
use bench_algorithms::util::{mean, scalar, vector};
use bench_algorithms::{Algorithm, AlgorithmFactory, Context, Scalars, TargetSpec};
use bench_envs::{Denoiser, DiffusionEnv};

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

pub struct Reinforce<B: AutodiffBackend, E: DiffusionEnv<B>> {
    config: ReinforceConfig,
    policy: Trained<B, E::Policy>,
}

impl<B: AutodiffBackend, E: DiffusionEnv<B> + 'static> Reinforce<B, E> {
    /// # Errors
    /// Invalid parameters.
    pub fn build(
        params: &ron::Value,
        env: &E,
        rng: &mut StdRng,
    ) -> Result<Box<dyn Algorithm<B, E>>, String> {
        let config: ReinforceConfig = bench_rewards::registry::params(params)?;
        if config.sample_batch < 2 {
            return Err("sample_batch must be at least 2 (the baseline is the batch mean)".into());
        }
        Ok(Box::new(Self {
            policy: Trained::new(env.init_policy(rng), config.optim.clone()),
            config,
        }))
    }
}

impl<B: AutodiffBackend, E: DiffusionEnv<B>> Algorithm<B, E> for Reinforce<B, E> {
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

impl<B: burn::tensor::backend::Backend> bench_rewards::Reward<B> for Quadrant {
    fn name(&self) -> &str {
        "quadrant"
    }

    fn score(
        &self,
        images: burn::tensor::Tensor<B, 4>,
        _prompts: &[String],
    ) -> burn::tensor::Tensor<B, 1> {
        let n = images.dims()[0];
        let x = images.reshape([n, 2]).detach();
        x.greater_elem(0.0).float().prod_dim(1).reshape([n])
    }

    fn differentiable(&self) -> bool {
        false
    }
}

fn quadrant<B: burn::tensor::backend::Backend>(
    _params: &ron::Value,
) -> Result<Box<dyn bench_rewards::Reward<B>>, String> {
    Ok(Box::new(Quadrant))
}

/// The built-in registries plus this crate's objective and reward.
pub fn plugins() -> bench::Plugins {
    let mut plugins = bench::Plugins::default();
    plugins.rewards.register(
        "quadrant",
        "1 in the upper-right quadrant, else 0: not differentiable (plugin example)",
        quadrant as bench_rewards::registry::RewardFactory<_>,
    );
    plugins.toy_algorithms.register(
        "reinforce",
        "REINFORCE on whole trajectories with a batch-mean baseline (plugin example)",
        Reinforce::build as AlgorithmFactory<_, _>,
    );
    plugins
}
