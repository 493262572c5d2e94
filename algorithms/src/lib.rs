//! Finetuning objectives behind one [`Algorithm`] trait. Each is an [`Objective`] (typed
//! parameters and a factory generic over the environment), registered once by name; a new
//! objective is one file plus one `objective::<T>(name, about)` call.

pub mod algorithm;
pub mod checkpoint;
pub mod dag_db;
pub mod dag_kl;
pub mod data_parallel;
pub mod ddpo;
pub mod detailed_balance;
pub mod dpok;
pub mod draft;
pub mod draft_lv;
pub mod nabla_gfn;
pub mod optim;
pub mod per_prompt_stats;
pub mod policy_gradient;
pub mod ppo;
pub mod refl;
pub mod registry;
pub mod reinforce;
pub mod residual_bands;
pub mod residual_db;
pub mod reward_backprop;
pub mod reward_gradient;
pub mod row_draws;
pub mod sub_tb;
pub mod sub_trajectory;
pub mod util;

pub use algorithm::{Algorithm, Context, Scalars, Sharding, TargetSpec};
pub use data_parallel::{Shard, ShardedGrads};
pub use registry::{
    build, builtin_algorithms, register_builtin, AlgorithmEntry, AlgorithmRegistry, Objective,
    RegisterObjective,
};
