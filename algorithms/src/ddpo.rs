//! DDPO (Black et al., 2023): PPO's clipped surrogate on per-step log-probability ratios, with
//! advantages normalised per prompt.

use std::path::Path;

use burn::tensor::backend::AutodiffBackend;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use bench_envs::{Denoiser, DiffusionEnv};

use crate::algorithm::{Algorithm, Context, Scalars, TargetSpec};
use crate::checkpoint::{load_module, load_state, save_module, save_state};
use crate::optim::{OptimConfig, Trainer};
use crate::per_prompt_stats::PerPromptStats;
use crate::ppo::{clip_fraction, clipped_surrogate};
use crate::util::{mean, minibatches, scalar, std, vector};

/// DDPO's hyper-parameters; defaults are the reference code's (kvablack/ddpo-pytorch).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DdpoConfig {
    /// Trajectories sampled per epoch (reference: 256 = 8 GPUs × 32).
    pub sample_batch: usize,
    /// Trajectories per optimizer step (every timestep of each is trained).
    pub train_batch: usize,
    /// Passes over each epoch's samples (1).
    pub inner_epochs: usize,
    /// PPO clip range on the ratio (1e-4, for log-probs averaged over 16384 latent dims).
    pub clip_range: f64,
    /// Advantages are clipped to ±this (5).
    pub adv_clip_max: f64,
    /// Per-prompt reward buffer length (32) and the count below which batch statistics are
    /// used (16).
    pub buffer_size: usize,
    pub min_count: usize,
    pub optim: OptimConfig,
}

impl Default for DdpoConfig {
    fn default() -> Self {
        Self {
            sample_batch: 256,
            train_batch: 64,
            inner_epochs: 1,
            clip_range: 1e-4,
            adv_clip_max: 5.0,
            buffer_size: 32,
            min_count: 16,
            optim: OptimConfig::default(),
        }
    }
}

pub struct Ddpo<B: AutodiffBackend, E: DiffusionEnv<B>> {
    config: DdpoConfig,
    policy: E::Policy,
    trainer: Trainer<B, E::Policy>,
    stats: PerPromptStats,
}

impl<B: AutodiffBackend, E: DiffusionEnv<B> + 'static> Ddpo<B, E> {
    /// # Errors
    /// Invalid parameters.
    pub fn build(
        params: &ron::Value,
        env: &E,
        rng: &mut StdRng,
    ) -> Result<Box<dyn Algorithm<B, E>>, String> {
        let config: DdpoConfig = bench_rewards::registry::params(params)?;
        if config.sample_batch == 0 || config.train_batch == 0 {
            return Err("sample_batch and train_batch must be positive".into());
        }
        Ok(Box::new(Self {
            policy: env.init_policy(rng),
            trainer: Trainer::new(config.optim.clone()),
            stats: PerPromptStats::new(config.buffer_size, config.min_count),
            config,
        }))
    }
}

impl<B: AutodiffBackend, E: DiffusionEnv<B>> Algorithm<B, E> for Ddpo<B, E> {
    fn train_epoch(&mut self, ctx: &Context<'_, B, E>) -> Result<Scalars, String> {
        let env = ctx.env;
        let device = env.device().clone();
        let mut rng = ctx.rng("ddpo");
        let (traj, rewards) = ctx.sample(&self.policy, self.config.sample_batch, &mut rng);
        let advantages = self
            .stats
            .update(&env.prompt_texts(&traj.prompts), &rewards);

        let steps: Vec<usize> = (0..traj.num_steps()).collect();
        let (mut losses, mut kls, mut clipfracs, mut norms) = (vec![], vec![], vec![], vec![]);
        for _ in 0..self.config.inner_epochs {
            for rows in minibatches(traj.batch_size(), self.config.train_batch, &mut rng) {
                let sub = traj.select_rows(&rows);
                let stacked = sub.stack(&steps);
                let adv: Vec<f64> = steps
                    .iter()
                    .flat_map(|_| rows.iter().map(|&r| advantages[r]))
                    .map(|a| a.clamp(-self.config.adv_clip_max, self.config.adv_clip_max))
                    .collect();
                let adv = vector::<B>(&adv, &device);
                let new_log_prob = env
                    .transition(
                        Denoiser::Policy(&self.policy),
                        stacked.x_t,
                        &stacked.steps,
                        &stacked.prompts,
                    )
                    .log_prob(stacked.x_next, env.scheduler().reduction());
                let log_ratio = new_log_prob - sub.stacked_log_probs(&steps);
                let eps = self.config.clip_range;
                let loss = clipped_surrogate(log_ratio.clone(), adv, eps);
                kls.push(scalar(
                    log_ratio
                        .clone()
                        .detach()
                        .powi_scalar(2)
                        .mean()
                        .mul_scalar(0.5),
                ));
                clipfracs.push(scalar(clip_fraction(log_ratio.detach(), eps)));
                losses.push(scalar(loss.clone().detach()));

                let mut grads = loss.backward();
                let (policy, norm) = self.trainer.step(self.policy.clone(), &mut grads);
                self.policy = policy;
                norms.push(norm);
            }
        }
        Ok(vec![
            ("reward_mean".into(), mean(&rewards)),
            ("reward_std".into(), std(&rewards)),
            ("loss".into(), mean(&losses)),
            ("approx_kl".into(), mean(&kls)),
            ("clipfrac".into(), mean(&clipfracs)),
            ("grad_norm".into(), mean(&norms)),
        ])
    }

    fn policy(&self) -> &E::Policy {
        &self.policy
    }

    fn target(&self, _env: &E) -> Option<TargetSpec> {
        None
    }

    fn save(&self, dir: &Path) -> Result<(), String> {
        save_module(&self.policy, &dir.join("policy.safetensors"))?;
        self.trainer.save(&dir.join("policy-optim"))?;
        save_state(&self.stats, &dir.join("per-prompt-stats.ron"))
    }

    fn load(&mut self, dir: &Path) -> Result<(), String> {
        load_module(&mut self.policy, &dir.join("policy.safetensors"))?;
        self.trainer.load(&dir.join("policy-optim"), &self.policy)?;
        self.stats = load_state(&dir.join("per-prompt-stats.ron"))?;
        Ok(())
    }
}
