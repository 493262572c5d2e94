//! DPOK (Fan et al., 2023): policy gradient on α·r(x₀) with a KL penalty to the pretrained
//! model on every step, KL(p_θ(·|x_t) ‖ p_base(·|x_t)) = ‖μ_θ − μ_base‖²/(2σ²) in closed form
//! (both transitions share σ). The policy term is PPO-clipped on per-step ratios, as in DDPO.
//!
//! Without reward normalisation the objective E[α·r] − γ·Σ_t KL_t is KL-regularised RL on whole
//! trajectories, whose optimum is p_base(x₀)·exp(α·r(x₀)/γ): a tilted target we can check.

use std::path::Path;

use burn::tensor::backend::AutodiffBackend;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use bench_envs::{Denoiser, DiffusionEnv, LogProbReduction};
use bench_rewards::toy::TargetKind;

use crate::algorithm::{Algorithm, Context, Scalars, TargetSpec};
use crate::checkpoint::{load_module, load_state, save_module, save_state};
use crate::optim::{OptimConfig, Trainer};
use crate::per_prompt_stats::PerPromptStats;
use crate::ppo::{clip_fraction, clipped_surrogate};
use crate::util::{mean, minibatches, scalar, std, vector};

/// DPOK's hyper-parameters; α = 10 and γ = 0.01 are the paper's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DpokConfig {
    pub sample_batch: usize,
    pub train_batch: usize,
    /// α: the weight of the reward.
    pub reward_coef: f64,
    /// γ: the weight of the per-step KL to the pretrained model.
    pub kl_coef: f64,
    pub clip_range: f64,
    pub adv_clip_max: f64,
    /// Divide per-prompt centred rewards by their std (DDPO's normalisation). Off, advantages
    /// are only centred, which keeps the optimum p_base·exp(α·r/γ).
    pub normalize: bool,
    pub buffer_size: usize,
    pub min_count: usize,
    pub optim: OptimConfig,
}

impl Default for DpokConfig {
    fn default() -> Self {
        Self {
            sample_batch: 256,
            train_batch: 64,
            reward_coef: 10.0,
            kl_coef: 0.01,
            clip_range: 1e-4,
            adv_clip_max: 5.0,
            normalize: true,
            buffer_size: 32,
            min_count: 16,
            optim: OptimConfig::default(),
        }
    }
}

pub struct Dpok<B: AutodiffBackend, E: DiffusionEnv<B>> {
    config: DpokConfig,
    policy: E::Policy,
    trainer: Trainer<B, E::Policy>,
    stats: PerPromptStats,
}

impl<B: AutodiffBackend, E: DiffusionEnv<B> + 'static> Dpok<B, E> {
    /// # Errors
    /// Invalid parameters.
    pub fn build(
        params: &ron::Value,
        env: &E,
        rng: &mut StdRng,
    ) -> Result<Box<dyn Algorithm<B, E>>, String> {
        let config: DpokConfig = bench_rewards::registry::params(params)?;
        if config.sample_batch == 0 || config.train_batch == 0 {
            return Err("sample_batch and train_batch must be positive".into());
        }
        if config.kl_coef <= 0.0 {
            return Err(format!("kl_coef = {} must be positive", config.kl_coef));
        }
        Ok(Box::new(Self {
            policy: env.init_policy(rng),
            trainer: Trainer::new(config.optim.clone()),
            stats: PerPromptStats::new(config.buffer_size, config.min_count),
            config,
        }))
    }
}

impl<B: AutodiffBackend, E: DiffusionEnv<B>> Algorithm<B, E> for Dpok<B, E> {
    fn train_epoch(&mut self, ctx: &Context<'_, B, E>) -> Result<Scalars, String> {
        let env = ctx.env;
        let c = &self.config;
        let device = env.device().clone();
        let reduction = env.scheduler().reduction();
        let mut rng = ctx.rng("dpok");
        let (traj, rewards) = ctx.sample(&self.policy, c.sample_batch, &mut rng);
        let texts = env.prompt_texts(&traj.prompts);
        let advantages = if c.normalize {
            self.stats.update(&texts, &rewards)
        } else {
            self.stats.centre(&texts, &rewards)
        };

        let steps: Vec<usize> = (0..traj.num_steps()).collect();
        let mut logs: [Vec<f64>; 4] = Default::default();
        for rows in minibatches(traj.batch_size(), c.train_batch, &mut rng) {
            let sub = traj.select_rows(&rows);
            let s = sub.stack(&steps);
            let adv: Vec<f64> = steps
                .iter()
                .flat_map(|_| rows.iter().map(|&r| advantages[r]))
                .map(|a| (c.reward_coef * a).clamp(-c.adv_clip_max, c.adv_clip_max))
                .collect();
            let current = env.transition(
                Denoiser::Policy(&self.policy),
                s.x_t.clone(),
                &s.steps,
                &s.prompts,
            );
            let base = env.transition(Denoiser::Base, s.x_t, &s.steps, &s.prompts);
            let log_ratio = current.log_prob(s.x_next, reduction) - sub.stacked_log_probs(&steps);
            let policy_loss =
                clipped_surrogate(log_ratio.clone(), vector::<B>(&adv, &device), c.clip_range);
            let per_dim = ((current.mean - base.mean.detach()) / current.std)
                .powi_scalar(2)
                .mul_scalar(0.5);
            let kl = match reduction {
                LogProbReduction::Mean => per_dim.mean_dim(1),
                LogProbReduction::Sum => per_dim.sum_dim(1),
            }
            .mean();
            let loss = policy_loss.clone() + kl.clone().mul_scalar(c.kl_coef);
            logs[0].push(scalar(policy_loss.detach()));
            logs[1].push(scalar(kl.detach()));
            logs[2].push(scalar(clip_fraction(log_ratio.detach(), c.clip_range)));
            let mut grads = loss.backward();
            let (policy, norm) = self.trainer.step(self.policy.clone(), &mut grads);
            self.policy = policy;
            logs[3].push(norm);
        }
        Ok(vec![
            ("reward_mean".into(), mean(&rewards)),
            ("reward_std".into(), std(&rewards)),
            ("policy_loss".into(), mean(&logs[0])),
            ("kl_to_base".into(), mean(&logs[1])),
            ("clipfrac".into(), mean(&logs[2])),
            ("grad_norm".into(), mean(&logs[3])),
        ])
    }

    fn policy(&self) -> &E::Policy {
        &self.policy
    }

    fn target(&self, env: &E) -> Option<TargetSpec> {
        (!self.config.normalize).then(|| TargetSpec {
            kind: TargetKind::Tilted,
            beta: self.config.reward_coef / self.config.kl_coef
                * env.scheduler().reduction().to_sum_factor(env.dims()),
        })
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
