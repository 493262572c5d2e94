//! Convolution layers run through `bench`'s CPU kernel where it applies.

use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::tensor::{backend::Backend, Tensor};

use crate::flex_kernels;

/// `conv.forward(x)`: through [`flex_kernels::conv2d`] (one matrix product per image, and on
/// autodiff a convolution for the input gradient) on burn-flex and autodiff over it in f32,
/// for one group, no dilation and symmetric explicit padding (every convolution of the SD
/// networks, Inception and CLIP's patch embedding); burn's convolution otherwise.
pub fn conv2d<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let padding = match conv.padding {
        PaddingConfig2d::Valid => Some([0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            Some([top, left])
        }
        _ => None,
    };
    let (Some(padding), 1, [1, 1]) = (padding, conv.groups, conv.dilation) else {
        return conv.forward(x);
    };
    let bias = conv.bias.as_ref().map(|b| b.val());
    match flex_kernels::conv2d(x, conv.weight.val(), bias, conv.stride, padding) {
        Ok(y) => y,
        Err((x, ..)) => conv.forward(x),
    }
}
