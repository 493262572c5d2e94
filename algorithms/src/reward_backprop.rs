//! The loop shared by the reward-gradient objectives (ReFL, DRaFT-K, DRaFT-LV): draw samples
//! whose graph reaches the policy, and descend −r (or −ReLU(r)) on them.

use bench_core::validate::{self, Invalid, Validate};
use std::ops::Range;
use std::path::Path;

use burn::module::AutodiffModule;
use burn::tensor::{backend::AutodiffBackend, Tensor};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use bench_core::stats::mean;
use bench_envs::{Denoiser, DiffusionEnv, DiffusionModel, Inner};
use bench_rewards::DifferentiableReward;

use crate::algorithm::{Algorithm, Context, Scalars, Sharding, TargetSpec};
use crate::optim::{OptimConfig, Trained};
use crate::reward_gradient::differentiable_reward;
use crate::row_draws::RowDraws;
use crate::util::{scalar, to_f64, uniform_prompts};

/// What ReFL and DRaFT share: batches, updates and the loss's form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackpropSettings {
    /// Samples per optimizer step.
    pub batch: usize,
    /// Optimizer steps per epoch.
    pub updates: usize,
    /// Maximise ReLU(r) instead of r (∇-GFlowNet's setting for ImageReward); a negative
    /// reward then gives no gradient.
    pub relu: bool,
    /// lr 1e-4 in ∇-GFlowNet's comparisons.
    pub optim: OptimConfig,
}

impl Default for BackpropSettings {
    fn default() -> Self {
        Self {
            batch: 64,
            updates: 4,
            relu: false,
            optim: OptimConfig {
                lr: 1e-4,
                ..OptimConfig::default()
            },
        }
    }
}

impl Validate for BackpropSettings {
    fn validate(&self) -> Result<(), Invalid> {
        validate::at_least("batch", self.batch, 1)?;
        validate::at_least("updates", self.updates, 1)?;
        self.optim.validate().map_err(|e| e.within("optim"))
    }
}

/// How one objective draws samples whose graph reaches the policy.
pub trait DifferentiableSampler<B: AutodiffBackend, E: DiffusionEnv<B>>: Send {
    /// The registry name, for messages.
    fn name(&self) -> &'static str;

    /// Samples for `prompts`, differentiable in `live`, all randomness from `draws` (this
    /// device's rows of the batch's draws; `prompts` are those rows' prompts): `[R·N, dims]`
    /// for R ≥ 1 draws per prompt, draw-major. The parts of sampling that the method does not
    /// differentiate run with `frozen` (in training, `live` on the inference backend), so
    /// that the gradient is exactly that of this function with `frozen` held fixed.
    fn samples(
        &self,
        env: &E,
        live: &E::Policy,
        frozen: &Inner<B, E::Policy>,
        prompts: &[usize],
        draws: &mut RowDraws<'_>,
    ) -> Tensor<B, 2>;
}

/// −mean r (or −mean ReLU(r)) of differentiable samples on `env`'s device, and the rewards.
pub fn reward_loss<B: AutodiffBackend, E: DiffusionEnv<B>>(
    env: &E,
    reward: &dyn DifferentiableReward<B>,
    x0: Tensor<B, 2>,
    prompts: &[usize],
    relu: bool,
) -> (Tensor<B, 1>, Vec<f64>) {
    let r = differentiable_reward(env, reward, x0, prompts);
    let values = to_f64(r.clone().detach());
    let objective = if relu { r.clamp_min(0.0) } else { r };
    (objective.mean().neg(), values)
}

/// The objective's loss on rows `rows` of a batch for `prompts` whose randomness is drawn
/// from `rng` (each shard of a data-parallel step replays the whole batch's draws and keeps
/// its rows), on `env`'s device, with the undifferentiated parts of sampling run by `frozen`.
#[allow(clippy::too_many_arguments)]
pub fn rows_loss<B: AutodiffBackend, E: DiffusionEnv<B>>(
    env: &E,
    reward: &dyn DifferentiableReward<B>,
    sampler: &dyn DifferentiableSampler<B, E>,
    live: &E::Policy,
    frozen: &Inner<B, E::Policy>,
    prompts: &[usize],
    rows: Range<usize>,
    relu: bool,
    rng: &mut StdRng,
) -> (Tensor<B, 1>, Vec<f64>) {
    let mine = &prompts[rows.clone()];
    let mut draws = RowDraws::new(rng, prompts.len(), rows);
    let x0 = sampler.samples(env, live, frozen, mine, &mut draws);
    let per_draw: Vec<usize> = mine.iter().cycle().take(x0.dims()[0]).copied().collect();
    reward_loss(env, reward, x0, &per_draw, relu)
}

/// A rollout whose last `tail` steps run `live` with their graph on the autodiff backend; the
/// earlier ones run `frozen` on the inference backend (DRaFT-K's truncation). Noise comes from
/// `draws` in the order [`bench_envs::rollout`] draws it, so `tail = 0` on a whole batch
/// replays that rollout exactly. Returns every state (x_T first), the frozen ones as
/// constants.
pub fn truncated_rollout<B: AutodiffBackend, E: DiffusionEnv<B>>(
    env: &E,
    live: &E::Policy,
    frozen: &Inner<B, E::Policy>,
    prompts: &[usize],
    tail: usize,
    draws: &mut RowDraws<'_>,
) -> Vec<Tensor<B, 2>> {
    let (train, infer) = (env.train(), env.infer());
    let (n, dims, device) = (prompts.len(), env.dims(), env.device());
    assert_eq!(n, draws.len(), "one prompt per row drawn for");
    let steps = env.scheduler().num_steps();
    let mut frozen_x = draws.normal::<B::InnerBackend>(dims, device);
    let mut live_x: Option<Tensor<B, 2>> = None;
    let mut states = vec![Tensor::from_inner(frozen_x.clone())];
    for k in 0..steps {
        let ks = vec![k; n];
        if k + tail >= steps {
            let x = live_x
                .take()
                .unwrap_or_else(|| Tensor::from_inner(frozen_x.clone()));
            let next = train
                .transition(Denoiser::Policy(live), x, &ks, prompts)
                .sample(draws.normal::<B>(dims, device));
            states.push(next.clone());
            live_x = Some(next);
        } else {
            frozen_x = infer
                .transition(Denoiser::Policy(frozen), frozen_x, &ks, prompts)
                .sample(draws.normal::<B::InnerBackend>(dims, device));
            states.push(Tensor::from_inner(frozen_x.clone()));
        }
    }
    states
}

/// A policy trained by backpropagating the reward through `S`'s samples.
pub struct BackpropAlgorithm<B: AutodiffBackend, E: DiffusionEnv<B>, S> {
    settings: BackpropSettings,
    sampler: S,
    policy: Trained<B, E::Policy>,
}

impl<B, E, S> BackpropAlgorithm<B, E, S>
where
    B: AutodiffBackend,
    E: DiffusionEnv<B> + 'static,
    S: DifferentiableSampler<B, E> + 'static,
{
    /// # Errors
    /// Empty batches.
    pub fn boxed(
        settings: BackpropSettings,
        sampler: S,
        env: &E,
        rng: &mut StdRng,
    ) -> Result<Box<dyn Algorithm<B, E>>, String> {
        if settings.batch == 0 || settings.updates == 0 {
            return Err("batch and updates must be positive".into());
        }
        crate::util::check_trajectories(env, settings.batch, "batch")?;
        Ok(Box::new(Self {
            policy: Trained::new(env.init_policy(rng), settings.optim.clone()),
            settings,
            sampler,
        }))
    }
}

impl<B, E, S> Algorithm<B, E> for BackpropAlgorithm<B, E, S>
where
    B: AutodiffBackend,
    E: DiffusionEnv<B>,
    S: DifferentiableSampler<B, E>,
{
    fn train_epoch(&mut self, ctx: &Context<'_, B, E>) -> Result<Scalars, String> {
        let reward_on = ctx.differentiable_rewards(self.sampler.name())?;
        let mut rng = ctx.rng(self.sampler.name());
        let (mut rewards, mut losses, mut norms) = (vec![], vec![], vec![]);
        let sampler: &dyn DifferentiableSampler<B, E> = &self.sampler;
        for _ in 0..self.settings.updates {
            let frozen = self.policy.module.valid();
            let prompts = uniform_prompts(ctx.env.prompts().len(), self.settings.batch, &mut rng);
            let rows: Vec<usize> = (0..prompts.len()).collect();
            let live = &self.policy.module;
            // Each device samples its rows of the batch from the same starting state of the
            // generator, so the batch's noise is one device's; they all leave it alike.
            let start = rng.clone();
            let mut step = ctx.backward_sharded(&rows, |shard| {
                let mut rng = start.clone();
                let live = shard.local(live);
                let (loss, values) = rows_loss(
                    shard.env,
                    reward_on[shard.device],
                    sampler,
                    &live,
                    &shard.local_inner(&frozen),
                    &prompts,
                    shard.positions.clone(),
                    self.settings.relu,
                    &mut rng,
                );
                (loss.clone(), (loss.detach(), values, live, rng))
            });
            rng = step.parts[0].1 .3.clone();
            losses.push(step.mean(|t| scalar(t.0.clone())));
            for (_, t) in &step.parts {
                rewards.extend_from_slice(&t.1);
            }
            let copies = step.parts.iter().map(|(_, t)| &t.2);
            norms.push(self.policy.step_sharded(step.grads.iter_mut().zip(copies)));
        }
        Ok(vec![
            // The reward of what the loss saw: x̂₀ predictions for ReFL, samples for DRaFT.
            ("train_reward".into(), mean(&rewards)),
            ("loss".into(), mean(&losses)),
            ("grad_norm".into(), mean(&norms)),
        ])
    }

    fn policy(&self) -> &E::Policy {
        &self.policy.module
    }

    fn needs_reward_gradient(&self) -> bool {
        true
    }

    fn data_parallel(&self) -> Sharding {
        Sharding::SamplingAndSteps
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
