//! burn's `Linear` layer, applied through the CPU kernel where it applies.

use burn::nn::Linear;
use burn::tensor::{backend::Backend, module, Tensor};

use crate::flex_kernels;

/// `layer.forward(x)`: see [`apply`].
pub fn forward<B: Backend, const D: usize>(layer: &Linear<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    let bias = layer.bias.as_ref().map(|b| b.val());
    apply(x, layer.weight.val(), bias)
}

/// `x·weight + bias` over the last dimension (burn's `module::linear`, `weight` `[d_in, d_out]`);
/// on burn-flex and autodiff over it one matrix product over all of `x`'s rows with the bias
/// accumulated onto, recorded with its backward pass under autodiff
/// ([`flex_kernels::linear`]), elsewhere burn's.
pub fn apply<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
) -> Tensor<B, D> {
    flex_kernels::linear(x, &weight, bias.as_ref())
        .unwrap_or_else(|x| module::linear(x, weight, bias))
}
