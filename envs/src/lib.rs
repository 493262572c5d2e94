//! The Markov decision processes that algorithms act on.
//!
//! Every environment implements [`Environment`] (prompts, the kind of sample it produces, a
//! trainable policy). A diffusion environment ([`DiffusionEnv`]) holds a [`DiffusionModel`] on
//! the autodiff backend for training and the same model on the inner backend for rollouts and
//! evaluation; each exposes the denoiser of a finetuned policy and of the frozen base model. The
//! [`Scheduler`] turns ε-predictions into Gaussian transitions with exact log-probabilities;
//! [`rollout`] samples trajectories through any model.

pub mod dpm_solver;
pub mod env;
pub mod gaussian;
pub mod rollout;
pub mod sampler;
pub mod schedule;
pub mod sd;
pub mod sharded_rollout;
pub mod toy2d;

pub use dpm_solver::{DpmSolver, DpmSolverKind, FinalSigma, TimestepSpacing};
pub use env::{Denoiser, DiffusionEnv, DiffusionModel, EnvInfo, Environment, Inner};
pub use gaussian::{DiagGaussian, LogProbReduction};
pub use rollout::{normal_data, normal_tensor, rollout, rollout_from, Stacked, Trajectory};
pub use sampler::{SamplerConfig, SamplerKind, Scheduler};
pub use schedule::{NoiseSchedule, ScheduleConfig};
pub use sharded_rollout::{rollout_sharded, rollout_spread, shard_rows, RolloutShard};
