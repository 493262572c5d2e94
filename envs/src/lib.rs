//! The Markov decision processes that algorithms act on.
//!
//! A diffusion environment ([`DiffusionEnv`]) exposes the denoiser of a finetuned policy and of
//! the frozen base model; the [`Scheduler`] turns ε-predictions into Gaussian transitions with
//! exact log-probabilities; [`rollout`] samples trajectories through any environment.

pub mod dpm_solver;
pub mod env;
pub mod gaussian;
pub mod graph_release;
pub mod rollout;
pub mod sampler;
pub mod schedule;
pub mod sd;
pub mod toy2d;

pub use dpm_solver::{DpmSolver, DpmSolverKind, FinalSigma, TimestepSpacing};
pub use env::{Denoiser, DiffusionEnv};
pub use gaussian::{DiagGaussian, LogProbReduction};
pub use graph_release::release_untracked_graph;
pub use rollout::{normal_tensor, rollout, Stacked, Trajectory};
pub use sampler::{SamplerConfig, SamplerKind, Scheduler};
pub use schedule::{NoiseSchedule, ScheduleConfig};
