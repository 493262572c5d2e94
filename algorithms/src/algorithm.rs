//! The algorithm trait and what an epoch gets to see.

use std::path::Path;

use burn::module::AutodiffModule;
use burn::tensor::{backend::AutodiffBackend, Tensor};
use rand::{rngs::StdRng, SeedableRng};

use bench_envs::{rollout_spread, Denoiser, DiffusionEnv, DiffusionModel, Trajectory};
use bench_rewards::{require_gradient, DifferentiableReward, Reward};

pub use bench_rewards::toy::TargetSpec;

/// Named scalars for the per-epoch log (`metrics.csv`), in a stable order.
pub type Scalars = Vec<(String, f64)>;

/// Everything an epoch may use besides the algorithm's own state.
pub struct Context<'a, B: AutodiffBackend, E: DiffusionEnv<B>> {
    pub env: &'a E,
    /// The run's environment on each further device of a data-parallel run, empty on one
    /// device: rollouts, and the steps of objectives that shard them
    /// ([`Context::backward_sharded`]), are split by rows over `env` and these.
    pub replicas: &'a [&'a E],
    pub reward: &'a dyn Reward<B>,
    /// The reward on each device of `replicas`, in their order, for an objective whose sharded
    /// steps differentiate it (∇-GFlowNet's); empty otherwise (the harness builds these only
    /// then: a reward network per device costs that device's memory).
    pub replica_rewards: &'a [&'a dyn Reward<B>],
    /// The epoch being trained, from 0.
    pub epoch: usize,
    /// Epochs in the whole run (for schedules such as β annealing).
    pub epochs: usize,
    pub seed: u64,
}

impl<B: AutodiffBackend, E: DiffusionEnv<B>> Context<'_, B, E> {
    /// An RNG for one purpose of this epoch, a pure function of (seed, epoch, purpose): a run
    /// resumed at an epoch boundary replays exactly what an uninterrupted one would do.
    pub fn rng(&self, purpose: &str) -> StdRng {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in purpose.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        StdRng::seed_from_u64(
            self.seed
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .wrapping_add((self.epoch as u64) << 20)
                ^ h,
        )
    }

    /// Rolls out `n` trajectories of `policy` on uniformly drawn prompts, on the inference
    /// backend (split by rows over the run's devices, drawing the noise one device would), and
    /// scores their final samples. The trajectories come back as constants of the training
    /// backend on the main device, for the objective's losses.
    pub fn sample(
        &self,
        policy: &E::Policy,
        n: usize,
        rng: &mut StdRng,
    ) -> (Trajectory<B>, Vec<f64>) {
        let prompts = crate::util::uniform_prompts(self.env.prompts().len(), n, rng);
        let policy = policy.valid();
        let models: Vec<&E::Infer> = self.devices().iter().map(|e| e.infer()).collect();
        let traj = rollout_spread(&models, Denoiser::Policy(&policy), prompts, rng);
        let rewards = self.score(traj.final_states(), &traj.prompts);
        (traj.lift(), rewards)
    }

    /// Rewards of states taken as final samples, without gradient.
    pub fn score(&self, x0: Tensor<B::InnerBackend, 2>, prompts: &[usize]) -> Vec<f64> {
        let samples = self.env.infer().decode(x0);
        crate::util::to_f64(self.reward.score(samples, &self.env.prompt_texts(prompts)))
    }

    /// The reward's differentiable side, for objective `who` that backpropagates through it.
    ///
    /// # Errors
    /// The reward has no gradient (the harness refuses such pairs before a run starts).
    pub fn differentiable_reward(&self, who: &str) -> Result<&dyn DifferentiableReward<B>, String> {
        require_gradient(&format!("algorithm `{who}`"), self.reward)
    }

    /// [`Context::differentiable_reward`] on each of the run's devices, the main one first,
    /// for an objective whose sharded steps differentiate the reward.
    ///
    /// # Errors
    /// The reward has no gradient, or it was not built on every device.
    pub fn differentiable_rewards(
        &self,
        who: &str,
    ) -> Result<Vec<&dyn DifferentiableReward<B>>, String> {
        if self.replica_rewards.len() != self.replicas.len() {
            return Err(format!(
                "algorithm `{who}` shards its steps over {} devices but its reward was built \
                 on {} (the harness builds it on every device of objectives that need it)",
                self.replicas.len() + 1,
                self.replica_rewards.len() + 1
            ));
        }
        std::iter::once(self.reward)
            .chain(self.replica_rewards.iter().copied())
            .map(|r| require_gradient(&format!("algorithm `{who}`"), r))
            .collect()
    }
}

/// What of its epochs an objective spreads over the devices of a data-parallel run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharding {
    /// Nothing: the whole epoch runs on the main device.
    None,
    /// Its rollouts ([`Context::sample`]); its steps run on the main device.
    Sampling,
    /// Its rollouts and its steps ([`Context::backward_sharded`]); an objective that also
    /// [`Algorithm::needs_reward_gradient`] gets the reward built on every device
    /// ([`Context::differentiable_rewards`]).
    SamplingAndSteps,
}

/// A finetuning objective. It owns its networks (the policy, flows, value heads), their
/// optimizers and its state; the harness only calls these methods.
pub trait Algorithm<B: AutodiffBackend, E: DiffusionEnv<B>>: Send {
    /// Samples what it needs and updates its networks; returns scalars for the log.
    ///
    /// # Errors
    /// A failure that should stop the run (the message is shown to the user).
    fn train_epoch(&mut self, ctx: &Context<'_, B, E>) -> Result<Scalars, String>;

    /// The current policy, for evaluation and sampling.
    fn policy(&self) -> &E::Policy;

    /// Whether the objective differentiates the reward; the harness then refuses, before
    /// anything runs, a reward that is not differentiable.
    fn needs_reward_gradient(&self) -> bool {
        false
    }

    /// What of an epoch this objective spreads over the devices of a data-parallel run.
    fn data_parallel(&self) -> Sharding {
        Sharding::Sampling
    }

    /// The exact target, for objectives that match a distribution.
    fn target(&self, env: &E) -> Option<TargetSpec>;

    /// Writes every trainable weight, optimizer state and counter into `dir`.
    ///
    /// # Errors
    /// An I/O failure.
    fn save(&self, dir: &Path) -> Result<(), String>;

    /// Restores what [`Algorithm::save`] wrote.
    ///
    /// # Errors
    /// Missing or mismatched files, named in the message.
    fn load(&mut self, dir: &Path) -> Result<(), String>;
}
