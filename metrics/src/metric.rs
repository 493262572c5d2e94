//! The metric trait, in the shape of burn-train's metrics: `update` on each batch of an
//! evaluation's samples, `finish` to named scalars.
//!
//! An evaluation streams its samples prompt by prompt, in batches the environment chooses, so
//! that its memory does not grow with the number of samples; a metric keeps only what it needs
//! (a running sum, a capped set of images, one prompt's 2-D points). What a metric keeps across
//! evaluations — the base model's features, say — goes in its state directory inside the run,
//! where a resumed run finds it again.

use std::path::Path;

use burn::tensor::{backend::Backend, Tensor};
use rand::rngs::StdRng;

use bench_core::BuildContext;
use bench_envs::EnvInfo;
use bench_rewards::toy::TargetSpec;
use bench_rewards::ToyReward;

/// Named scalars, in a stable order.
pub type Scalars = Vec<(String, f64)>;

/// A batch of one prompt's evaluation samples.
pub struct SampleBatch<'a, B: Backend> {
    /// The prompt's index among the environment's prompts, and its text.
    pub prompt: usize,
    pub prompt_text: &'a str,
    /// Index of the batch's first sample among this prompt's.
    pub first: usize,
    /// What the reward scored: images `[N, C, H, W]` in [0, 1], or the toy's points
    /// `[N, 2, 1, 1]`.
    pub samples: &'a Tensor<B, 4>,
    /// The reward of each sample.
    pub rewards: &'a [f64],
    /// The base model's samples from the same initial noise, when a metric asked for them.
    pub base: Option<&'a Tensor<B, 4>>,
}

/// Where an evaluation falls in its run.
pub struct EvalPoint<'a> {
    /// Epochs trained before this evaluation (0: the base model).
    pub epoch: usize,
    /// The run's epochs: `epoch == epochs` is its final evaluation.
    pub epochs: usize,
    /// The metric's directory in the run, as in [`EvalContext::state_dir`].
    pub state_dir: &'a Path,
}

/// What a metric asks of one evaluation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// The samples of each prompt it reads (the evaluation draws the most any metric asks
    /// for, and passes each metric only its first ones); `None`: `eval.samples_per_prompt`.
    pub samples_per_prompt: Option<usize>,
    /// The base model's samples from the same initial noise, in [`SampleBatch::base`].
    pub base: bool,
}

/// What an evaluation gives a metric besides its samples.
pub struct EvalContext<'a> {
    /// Epochs trained before this evaluation (0: the untrained policy, i.e. the base model).
    pub epoch: usize,
    /// The evaluation's RNG: metrics that draw (exact target samples) draw from it in
    /// evaluation order, so an evaluation replays exactly from its seed.
    pub rng: &'a mut StdRng,
    /// This metric's directory in the run (`<run>/metrics/<name>/`), created on demand.
    pub state_dir: &'a Path,
    /// Where evaluation artifacts go (`<run>/samples/`).
    pub samples_dir: &'a Path,
}

/// An evaluation metric on backend `B` (the inference backend).
pub trait Metric<B: Backend>: Send {
    /// What this metric asks of the evaluation at `at`, asked before it samples anything;
    /// `None` leaves the metric out of that evaluation (an expensive metric computed only at
    /// the end of a run). A metric that keeps what it needs of the base model in its state
    /// directory reads it here and stops asking for base samples.
    ///
    /// # Errors
    /// Unreadable state.
    fn needs(&mut self, _at: &EvalPoint<'_>) -> Result<Option<Needs>, String> {
        Ok(Some(Needs::default()))
    }

    /// Takes one batch.
    ///
    /// # Errors
    /// A failure that should stop the run (unreadable state, an I/O error).
    fn update(
        &mut self,
        batch: &SampleBatch<'_, B>,
        cx: &mut EvalContext<'_>,
    ) -> Result<(), String>;

    /// Every sample of `prompt` has been seen (metrics computed per prompt finish it here).
    ///
    /// # Errors
    /// As [`Metric::update`].
    fn end_prompt(&mut self, _prompt: usize, _cx: &mut EvalContext<'_>) -> Result<(), String> {
        Ok(())
    }

    /// The evaluation's scalars (none for a metric that only writes artifacts); the metric is
    /// then ready for the next evaluation.
    ///
    /// # Errors
    /// As [`Metric::update`].
    fn finish(&mut self, cx: &mut EvalContext<'_>) -> Result<Scalars, String>;
}

/// What a metric's factory knows of the run it serves.
pub struct MetricSetup<'a, B: Backend> {
    pub build: BuildContext<'a, B>,
    pub env: &'a dyn EnvInfo,
    /// The run's reward by name with its resolved parameters, and its closed form on the toy.
    pub reward: &'a str,
    pub reward_params: &'a str,
    /// Samples per prompt at each evaluation (`eval.samples_per_prompt`).
    pub samples_per_prompt: usize,
    pub toy_reward: Option<&'a dyn ToyReward>,
    /// The exact distribution to compare with, if the run has one: the objective's own
    /// target, or the sweep's `eval.target` for objectives without one.
    pub target: Option<TargetSpec>,
}
