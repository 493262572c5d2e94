//! The backends runs use, chosen at run time by `--device` (see [`crate::device`]).
//!
//! [`Cpu`] is burn's pure-Rust `flex` backend under autodiff, always built; [`Cuda`] is burn's
//! CUDA backend under autodiff, built with the `cuda` cargo feature. The harness is generic over
//! [`HarnessBackend`], so model, objective and metric code is compiled once per backend and a
//! device is a flag, never a recompile; the types keep inference and training apart at compile
//! time (a runtime-dispatching backend would turn every mix-up into a panic on the GPU).
//!
//! With the `checkpointing` feature, autodiff recomputes memory-bound activations (norms,
//! activations, element-wise ops) during the backward pass instead of keeping them, trading
//! compute for memory when training through SD's UNet; the gradients are the same
//! (models/tests/parity/checkpointing.rs).

use burn::tensor::backend::AutodiffBackend;

use crate::plugins::{Plugins, Registries};

#[cfg(not(feature = "checkpointing"))]
type Tape<B> = burn::backend::Autodiff<B>;

#[cfg(feature = "checkpointing")]
type Tape<B> = burn::backend::Autodiff<
    B,
    burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing,
>;

/// The CPU backend (burn-flex under autodiff): the default, and what CI tests.
pub type Cpu = Tape<burn::backend::Flex>;

/// The CUDA backend under autodiff (the `cuda` feature).
#[cfg(feature = "cuda")]
pub type Cuda = Tape<burn::backend::Cuda>;

/// The default backend: [`Cpu`]. Tests, examples and benchmarks name it.
pub type Backend = Cpu;

/// The backend inference runs on: `Backend` without autodiff (rollouts, evaluation,
/// `bench sample`, reward scoring and metrics record no graph).
pub type Inner = <Backend as AutodiffBackend>::InnerBackend;

/// Where the default backend's tensors live.
pub type Device = burn::tensor::Device<Backend>;

/// A backend the harness runs on: how it finds its plugins' factories, and what it is called
/// in messages.
pub trait HarnessBackend: AutodiffBackend {
    /// The backend's name in messages (`cpu`, `cuda`).
    const NAME: &'static str;

    /// The plugins' factories on this backend.
    fn registries(plugins: &Plugins) -> &Registries<Self>;
}

impl HarnessBackend for Cpu {
    const NAME: &'static str = "cpu";

    fn registries(plugins: &Plugins) -> &Registries<Self> {
        &plugins.cpu
    }
}

#[cfg(feature = "cuda")]
impl HarnessBackend for Cuda {
    const NAME: &'static str = "cuda";

    fn registries(plugins: &Plugins) -> &Registries<Self> {
        &plugins.cuda
    }
}
