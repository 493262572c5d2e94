//! Per-channel parameters (norm scales and shifts, pixel means) applied to `[N, C, H, W]`.

use burn::tensor::{backend::Backend, Tensor};

/// `p` `[C]` as `[N, C, 1, 1]`, repeated over the batch.
///
/// The natural `[1, C, 1, 1]` broadcasts over N with a stride-0 batch dim, which misses
/// burn-flex's row-broadcast kernel: its element-wise product then walks every element through
/// the generic strided iterator, 40× slower than with the batch repeated (`x[8,320,32,32] *
/// g[1,320,1,1]` 32 ms against 0.8 ms; `tools/bench/flex_op_timing.py`). Same values either way.
pub fn per_channel<B: Backend>(p: Tensor<B, 1>, n: usize) -> Tensor<B, 4> {
    let [c] = p.dims();
    p.unsqueeze_dim::<2>(0)
        .repeat_dim(0, n)
        .reshape([n, c, 1, 1])
}
