//! The loop DDPO and DPOK share: sample an epoch, turn rewards into per-prompt advantages, and
//! descend PPO's clipped surrogate on every transition, plus (DPOK) a closed-form KL to the
//! pretrained model on every step.

use bench_core::validate::{self, Invalid, Validate};
use std::path::Path;

use burn::tensor::{backend::AutodiffBackend, Tensor};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use bench_core::stats::{mean, population_std as std};
use bench_envs::{Denoiser, DiffusionEnv, DiffusionModel};
use bench_rewards::toy::TargetKind;

use crate::algorithm::{Algorithm, Context, Scalars, Sharding, TargetSpec};
use crate::checkpoint::{load_state, save_state};
use crate::optim::{OptimConfig, Trained};
use crate::per_prompt_stats::PerPromptStats;
use crate::ppo::{clip_fraction, clipped_surrogate};
use crate::util::{minibatches, scalar, vector};

/// What DDPO and DPOK share; defaults are DDPO's reference code's (kvablack/ddpo-pytorch).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PpoShared {
    /// Trajectories sampled per epoch (reference: 256 = 8 GPUs × 32).
    pub sample_batch: usize,
    /// Trajectories per optimizer step (every timestep of each is trained).
    pub train_batch: usize,
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

impl Default for PpoShared {
    fn default() -> Self {
        Self {
            sample_batch: 256,
            train_batch: 64,
            clip_range: 1e-4,
            adv_clip_max: 5.0,
            buffer_size: 32,
            min_count: 16,
            optim: OptimConfig::default(),
        }
    }
}

impl Validate for PpoShared {
    fn validate(&self) -> Result<(), Invalid> {
        validate::at_least("sample_batch", self.sample_batch, 1)?;
        validate::count_within("train_batch", self.train_batch, 1, self.sample_batch)?;
        validate::positive("clip_range", self.clip_range)?;
        validate::positive("adv_clip_max", self.adv_clip_max)?;
        validate::at_least("buffer_size", self.buffer_size, 1)?;
        self.optim.validate().map_err(|e| e.within("optim"))
    }
}

/// DPOK's KL regularisation: the objective E[α·r] − γ·Σ_t KL(p_θ(·|x_t) ‖ p_base(·|x_t)).
#[derive(Clone, Debug, PartialEq)]
pub struct KlToBase {
    /// α, the weight of the reward's advantage.
    pub reward_coef: f64,
    /// γ, the weight of the per-step KL.
    pub kl_coef: f64,
}

/// What tells DDPO and DPOK apart.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyGradientSettings {
    pub shared: PpoShared,
    /// The RNG purpose (the objective's name), so each objective's runs replay exactly.
    pub name: &'static str,
    /// Passes over each epoch's samples.
    pub inner_epochs: usize,
    /// Divide per-prompt centred rewards by their std; off, they are only centred.
    pub normalize: bool,
    pub kl: Option<KlToBase>,
}

pub struct PolicyGradient<B: AutodiffBackend, E: DiffusionEnv<B>> {
    settings: PolicyGradientSettings,
    policy: Trained<B, E::Policy>,
    stats: PerPromptStats,
}

impl<B: AutodiffBackend, E: DiffusionEnv<B> + 'static> PolicyGradient<B, E> {
    /// # Errors
    /// Empty batches or a non-positive KL weight.
    pub fn boxed(
        settings: PolicyGradientSettings,
        env: &E,
        rng: &mut StdRng,
    ) -> Result<Box<dyn Algorithm<B, E>>, String> {
        let s = &settings.shared;
        if s.sample_batch == 0 || s.train_batch == 0 {
            return Err("sample_batch and train_batch must be positive".into());
        }
        crate::util::check_trajectories(env, s.sample_batch, "sample_batch")?;
        if let Some(kl) = &settings.kl {
            if kl.kl_coef <= 0.0 {
                return Err(format!("kl_coef = {} must be positive", kl.kl_coef));
            }
        }
        Ok(Box::new(Self {
            policy: Trained::new(env.init_policy(rng), s.optim.clone()),
            stats: PerPromptStats::new(s.buffer_size, s.min_count),
            settings,
        }))
    }
}

impl<B: AutodiffBackend, E: DiffusionEnv<B>> Algorithm<B, E> for PolicyGradient<B, E> {
    fn train_epoch(&mut self, ctx: &Context<'_, B, E>) -> Result<Scalars, String> {
        let env = ctx.env;
        let st = &self.settings;
        let sh = &st.shared;
        let reduction = env.scheduler().reduction();
        let mut rng = ctx.rng(st.name);
        let (traj, rewards) = ctx.sample(&self.policy.module, sh.sample_batch, &mut rng);
        let texts = env.prompt_texts(&traj.prompts);
        let advantages = if st.normalize {
            self.stats.update(&texts, &rewards)
        } else {
            self.stats.centre(&texts, &rewards)
        };
        let reward_coef = st.kl.as_ref().map_or(1.0, |kl| kl.reward_coef);

        let steps: Vec<usize> = (0..traj.num_steps()).collect();
        let mut logs: [Vec<f64>; 5] = Default::default();
        for _ in 0..st.inner_epochs {
            for rows in minibatches(traj.batch_size(), sh.train_batch, &mut rng) {
                // Every term is a mean over the rows' transitions: the step shards by rows.
                let mut step = ctx.backward_sharded(&rows, |shard| {
                    let env = shard.env;
                    let policy = shard.local(&self.policy.module);
                    let sub = shard.rows_of(&traj);
                    let s = sub.stack(&steps);
                    let adv: Vec<f64> = steps
                        .iter()
                        .flat_map(|_| shard.rows.iter().map(|&r| advantages[r]))
                        .map(|a| (reward_coef * a).clamp(-sh.adv_clip_max, sh.adv_clip_max))
                        .collect();
                    // The base model's mean is a constant of the KL: the inference backend's.
                    let base_mean = st.kl.as_ref().map(|_| {
                        env.infer()
                            .transition(Denoiser::Base, s.x_t.clone().inner(), &s.steps, &s.prompts)
                            .mean
                    });
                    let old_log_probs = sub.stacked_log_probs(&steps);
                    let current = env.train().transition(
                        Denoiser::Policy(&policy),
                        s.x_t.clone(),
                        &s.steps,
                        &s.prompts,
                    );
                    let log_ratio = current.log_prob(s.x_next, reduction) - old_log_probs;
                    let mut loss = clipped_surrogate(
                        log_ratio.clone(),
                        vector::<B>(&adv, env.device()),
                        sh.clip_range,
                    );
                    let surrogate = loss.clone().detach();
                    let mut kl_to_base = None;
                    if let (Some(kl), Some(base_mean)) = (&st.kl, base_mean) {
                        // Both transitions share σ: KL = ‖μ_θ − μ_base‖²/(2σ²), reduced as
                        // log-probs.
                        let per_dim = ((current.mean - Tensor::from_inner(base_mean))
                            / current.std)
                            .powi_scalar(2)
                            .mul_scalar(0.5);
                        let to_base = reduction.reduce(per_dim).mean();
                        kl_to_base = Some(to_base.clone().detach());
                        loss = loss + to_base.mul_scalar(kl.kl_coef);
                    }
                    let approx_kl = log_ratio
                        .clone()
                        .detach()
                        .powi_scalar(2)
                        .mean()
                        .mul_scalar(0.5);
                    let clipped = clip_fraction(log_ratio.detach(), sh.clip_range);
                    (loss, (surrogate, approx_kl, clipped, kl_to_base, policy))
                });
                logs[0].push(step.mean(|t| scalar(t.0.clone())));
                logs[1].push(step.mean(|t| scalar(t.1.clone())));
                logs[2].push(step.mean(|t| scalar(t.2.clone())));
                if st.kl.is_some() {
                    logs[4].push(step.mean(|t| t.3.clone().map_or(0.0, scalar)));
                }
                let copies = step.parts.iter().map(|(_, t)| &t.4);
                logs[3].push(self.policy.step_sharded(step.grads.iter_mut().zip(copies)));
            }
        }
        let mut scalars = vec![
            ("reward_mean".into(), mean(&rewards)),
            ("reward_std".into(), std(&rewards)),
            ("loss".into(), mean(&logs[0])),
            ("approx_kl".into(), mean(&logs[1])),
            ("clipfrac".into(), mean(&logs[2])),
            ("grad_norm".into(), mean(&logs[3])),
        ];
        if st.kl.is_some() {
            scalars.push(("kl_to_base".into(), mean(&logs[4])));
        }
        Ok(scalars)
    }

    fn policy(&self) -> &E::Policy {
        &self.policy.module
    }

    fn data_parallel(&self) -> Sharding {
        Sharding::SamplingAndSteps
    }

    /// Without reward normalisation, KL-regularised RL on whole trajectories has the optimum
    /// p_base(x₀)·exp(α·r(x₀)/γ).
    fn target(&self, env: &E) -> Option<TargetSpec> {
        let kl = self.settings.kl.as_ref()?;
        (!self.settings.normalize).then(|| TargetSpec {
            kind: TargetKind::Tilted,
            beta: kl.reward_coef / kl.kl_coef
                * env.scheduler().reduction().to_sum_factor(env.dims()),
        })
    }

    fn save(&self, dir: &Path) -> Result<(), String> {
        self.policy.save(dir, "policy")?;
        save_state(&self.stats, &dir.join("per-prompt-stats.ron"))
    }

    fn load(&mut self, dir: &Path) -> Result<(), String> {
        self.policy.load(dir, "policy")?;
        self.stats = load_state(&dir.join("per-prompt-stats.ron"))?;
        Ok(())
    }
}
