//! The `bench` binary end to end: CLI, resume, exactness, sampling, tiny SD, checkpoint layouts,
//! convergence.
//!
//! One test binary per crate: every binary links all of burn, so separate files would each
//! re-link (and re-monomorphise) it; modules share one link and run in parallel.

mod cli;
mod configs;
mod convergence;
mod devices;
mod exact_solution;
mod exactness;
mod fid;
mod fuzz;
mod layouts;
mod plugins_api;
mod reliability;
mod resume;
mod sample;
mod score;
mod sd_tiny;
mod shards;
mod support;
