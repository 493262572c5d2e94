//! Keeps inference on an autodiff backend from growing without bound.
//!
//! burn 0.21's autodiff registers every operation in its graph, tracked or not, and frees the
//! records of dropped tensors only when some `backward` runs. Loops that never differentiate
//! (rollouts, evaluation, `bench sample`) therefore grew by about 0.9 MB per call of the tiny
//! fixture UNet (measured with `valgrind --tool=massif`: `GraphLocator::new_graph` and
//! `AutodiffServer::register` under `OpsPrep<UnTracked>::finish`; burn issues #4339 and #4970;
//! 0.21 has no public cleanup call). One backward of a
//! one-element leaf runs burn's own cleanup of such orphaned records, and nothing else.

use burn::tensor::{backend::AutodiffBackend, Tensor};

/// Frees autodiff's records of operations whose results were dropped; call it once per step of
/// an inference loop. Live tensors and their gradients are untouched.
pub fn release_untracked_graph<B: AutodiffBackend>(device: &B::Device) {
    let _ = Tensor::<B, 1>::zeros([1], device)
        .require_grad()
        .sum()
        .backward();
}
