//! Finetuning objectives behind one [`Algorithm`] trait, built by name from a
//! [`AlgorithmRegistry`]. A new objective is one file plus one `register` call.

pub mod algorithm;
pub mod checkpoint;
pub mod dag_db;
pub mod ddpo;
pub mod optim;
pub mod per_prompt_stats;
pub mod registry;
pub mod util;

pub use algorithm::{Algorithm, Context, Scalars, TargetSpec};
pub use registry::{build, builtin_algorithms, AlgorithmFactory, AlgorithmRegistry};
