//! `bench`: run algorithm × reward × seed sweeps from RON files, resume them after a crash,
//! and tabulate their results.

pub mod allocator;
pub mod backend;
pub mod checkpoints;
pub mod cli;
pub mod compute_pool;
pub mod device;
pub mod divergence;
pub mod doctor;
pub mod eval;
pub mod fid;
pub mod fid_stats;
pub mod image_folder;
pub mod instruments;
pub mod interrupt;
pub mod plan;
pub mod plugins;
pub mod progress;
pub mod resources;
pub mod run_command;
pub mod run_config;
pub mod run_id;
pub mod runner;
pub mod sample;
pub mod score;
pub mod shard;
pub mod slurm;
pub mod store;
pub mod sweep;
mod sweep_spec;
pub mod table;
pub mod torch_noise;
pub mod training;

pub use cli::main_with;
pub use plugins::Plugins;
