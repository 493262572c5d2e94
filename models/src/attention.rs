//! Multi-head scaled dot-product attention, shared by CLIP's text encoder, the UNet's
//! transformers and the VAE's single-head spatial attention.

use burn::tensor::activation::softmax;
use burn::tensor::{backend::Backend, Bool, Tensor};

use crate::flex_kernels;
use crate::precision::in_f32;

/// `softmax(q·kᵀ/√d)·v` per head, for projected queries `[N, Lq, C]` and keys/values
/// `[N, Lk, C]` whose channels split into `heads` heads of width `d = C / heads`. `mask`
/// `[N, Lq, Lk]` is true where attention is forbidden; no row may be fully masked.
/// Returns `[N, Lq, C]`, heads concatenated in order.
pub fn multi_head_attention<B: Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    heads: usize,
    mask: Option<Tensor<B, 3, Bool>>,
) -> Tensor<B, 3> {
    let [n, lq, c] = q.dims();
    let d = c / heads;
    let scale = (d as f64).powf(-0.5);
    // Unmasked attention on the CPU backends (inference and autodiff over it): one fused
    // kernel ([`flex_kernels::attention`]), no scores materialised, no head copies. Masked
    // attention (CLIP's causal text encoder, BERT's padding) and the other backends compose
    // burn's ops below.
    let (q, k, v) = match mask {
        Some(_) => (q, k, v),
        None => match flex_kernels::attention(q, k, v, heads, scale) {
            Ok(out) => return out,
            Err(qkv) => qkv,
        },
    };
    // Under autodiff the heads are copied out ([`flex_kernels::contiguous`]): the backward pass
    // then hands their gradients back in the projections' layout, where burn would copy each
    // element through its strided iterator. Inference multiplies the views as they are.
    let tracked = B::ad_enabled(&q.device());
    let split = |t: Tensor<B, 3>| {
        let len = t.dims()[1];
        let heads = t.reshape([n, len, heads, d]).swap_dims(1, 2);
        match tracked {
            true => flex_kernels::contiguous(heads),
            false => heads,
        }
    };
    // Scaled before the split: the same products, on a contiguous tensor (a strided one goes
    // through burn-flex's generic strided iterator).
    let q = split(q * scale);
    let mut scores = q.matmul(split(k).swap_dims(2, 3));
    if let Some(mask) = mask {
        scores = scores.mask_fill(mask.unsqueeze_dim(1), f32::NEG_INFINITY);
    }
    let probabilities = in_f32(scores, |s| {
        flex_kernels::softmax_last(s).unwrap_or_else(|s| softmax(s, 3))
    });
    let heads = probabilities.matmul(split(v));
    // The heads merged back by runs of `d` channels ([`flex_kernels::contiguous`]).
    flex_kernels::contiguous(heads.swap_dims(1, 2)).reshape([n, lq, c])
}
