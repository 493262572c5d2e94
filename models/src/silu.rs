//! SiLU, `x·σ(x)`: burn's op, or on the CPU inference backend one vectorised pass
//! ([`crate::flex_kernels`]; burn-flex 0.21 runs it as two single-threaded passes with a scalar
//! `exp` per element).

use burn::tensor::{activation, backend::Backend, Tensor};

use crate::flex_kernels;

/// `x·σ(x)` (diffusers' `nn.SiLU`), with burn's gradient on autodiff backends.
pub fn silu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    flex_kernels::silu(x).unwrap_or_else(activation::silu)
}
