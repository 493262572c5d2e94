//! Samplers and environments: exact transitions, diffusers schedulers, the SD environment.
//!
//! One test binary per crate: every binary links all of burn, so separate files would each
//! re-link (and re-monomorphise) it; modules share one link and run in parallel.

#[path = "../../../models/tests/parity/common.rs"]
mod common;
mod diffusers_schedulers;
mod dpm_solver;
mod sd_env;
mod sd_precision;
mod sd_tiny_rollout;
mod transitions;
