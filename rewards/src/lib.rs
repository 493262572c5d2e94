//! Rewards: the [`Reward`] trait, a name-based [`RewardRegistry`], and the rewards themselves.
//!
//! The toy rewards ([`toy`]) also know their exact targets: `exp(β·r)` alone and the tilted
//! `p_base·exp(β·r)`, closed form where possible and on a fine grid otherwise.

pub mod file_check;
pub mod image;
pub mod registry;
pub mod reward;
pub mod toy;

pub use file_check::FileCheck;
pub use registry::{builtin_reward, builtin_rewards, RewardEntry, RewardPlugin, RewardRegistry};
pub use reward::{
    image_gradient, input_gradient, require_gradient, DifferentiableReward, OnAnyBackend, Reward,
    TensorReward, ToyReward,
};
