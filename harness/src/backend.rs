//! The backend runs use: burn's pure-Rust `flex` CPU backend under autodiff.
//!
//! With the `checkpointing` feature, autodiff recomputes memory-bound activations (norms,
//! activations, element-wise ops) during the backward pass instead of keeping them, trading
//! compute for memory when training through SD's UNet; the gradients are the same
//! (models/tests/parity/checkpointing.rs).

#[cfg(not(feature = "checkpointing"))]
pub type Backend = burn::backend::Autodiff<burn::backend::Flex>;

#[cfg(feature = "checkpointing")]
pub type Backend = burn::backend::Autodiff<
    burn::backend::Flex,
    burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing,
>;

/// The backend inference runs on: `Backend` without autodiff (rollouts, evaluation,
/// `bench sample`, reward scoring and metrics record no graph).
pub type Inner = <Backend as burn::tensor::backend::AutodiffBackend>::InnerBackend;

/// Where tensors live.
pub type Device = burn::tensor::Device<Backend>;
