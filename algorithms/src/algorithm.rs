//! The algorithm trait and what an epoch gets to see.

use std::path::Path;

use burn::tensor::backend::AutodiffBackend;
use rand::{rngs::StdRng, SeedableRng};

use bench_envs::DiffusionEnv;
use bench_rewards::{toy::TargetKind, Reward};

/// Named scalars for the per-epoch log (`metrics.csv`), in a stable order.
pub type Scalars = Vec<(String, f64)>;

/// Everything an epoch may use besides the algorithm's own state.
pub struct Context<'a, B: AutodiffBackend, E: DiffusionEnv<B>> {
    pub env: &'a E,
    pub reward: &'a dyn Reward<B>,
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
}

/// The exact distribution an objective converges to on the toy, if it has one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TargetSpec {
    pub kind: TargetKind,
    /// The exponent on the reward in terms of true log-densities: β, times the number of
    /// dimensions when log-probabilities are averaged rather than summed.
    pub beta: f64,
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

impl<B: AutodiffBackend, E: DiffusionEnv<B>> Context<'_, B, E> {
    /// Rolls out `n` trajectories of `policy` (frozen for the rollout) on uniformly drawn
    /// prompts and scores their final samples.
    pub fn sample(
        &self,
        policy: &E::Policy,
        n: usize,
        rng: &mut StdRng,
    ) -> (bench_envs::Trajectory<B>, Vec<f64>) {
        let prompts = crate::util::uniform_prompts(self.env.prompts().len(), n, rng);
        let frozen = burn::module::Module::no_grad(policy.clone());
        let traj = bench_envs::rollout(
            self.env,
            bench_envs::Denoiser::Policy(&frozen),
            prompts,
            rng,
        );
        let rewards = self.score(traj.final_states(), &traj.prompts);
        (traj, rewards)
    }

    /// Rewards of states taken as final samples, without gradient.
    pub fn score(&self, x0: burn::tensor::Tensor<B, 2>, prompts: &[usize]) -> Vec<f64> {
        let images = self.env.decode(x0.detach());
        crate::util::to_f64(
            self.reward
                .score(images, &self.env.prompt_texts(prompts))
                .detach(),
        )
    }
}
