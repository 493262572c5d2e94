//! `x·W + b` over every row of `x` (burn's `Linear`, `W` `[d_in, d_out]`) as one matrix
//! product, through faer's matrix product.
//!
//! burn-flex runs a `Linear` on `[batch, tokens, d_in]` as one `gemm` per batch item on one
//! thread each, packing `W` again for every item, then adds the bias in a second pass. Here
//! the rows of all items are one `[batch·tokens, d_in]` matrix, the bias is written first and
//! the product accumulated onto it, and the product is faer's (its x86-64 kernels use AVX-512
//! where the CPU has it; the `gemm` crate burn-flex calls runs its AVX2 kernels unless built
//! with its `x86-v4` feature, which made tiny-SD's small products slower on Zen 4). At the
//! ViT-B/16 shapes of DreamSim (3152 rows, 768 → 2304/768/3072) the product takes 14–27 %
//! less time than burn-flex's way on a 2-core Zen 4 (`flex_op_timing`'s linear rows).
//!
//! The gradients (training on autodiff over burn-flex, `autodiff.rs`) are two more products,
//! `dy·Wᵀ` and `xᵀ·dy`, and a sum of `dy`'s rows for the bias.
//!
//! faer splits the work over rows and columns, never over the summed dimension (`d_in`, `d_out`
//! for the input's gradient, the rows for the weight's), so each output is summed in the same
//! order whatever the number of threads (a test holds it to that).

use burn_flex::FlexTensor;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

use super::dispatch::{from_shape, matrix_rows, values};

/// Below this many multiply-adds the product runs on the calling thread (`128³`, as
/// burn-flex's own threshold for spreading a batch of products).
const PARALLEL_MACS: usize = 1 << 21;

/// `x·W + b` for the `x.len() / d_in` rows of `x` (row-major, `d_in` > 0), `W` `[d_in, d_out]`
/// given as its rows, `weight.1` apart in `weight.0` (≥ `d_out`: the columns may be narrowed
/// out of a wider matrix, as GEGLU's halves are), `b` of length `d_out`: row-major
/// `[rows, d_out]`.
pub(crate) fn linear(
    x: &[f32],
    (weight, weight_row_stride): (&[f32], usize),
    bias: Option<&[f32]>,
    d_in: usize,
    d_out: usize,
) -> Vec<f32> {
    let rows = x.len() / d_in;
    let (mut out, accum) = match bias {
        Some(bias) => (bias.repeat(rows), Accum::Add),
        None => (vec![0.0; rows * d_out], Accum::Replace),
    };
    product(
        MatMut::from_row_major_slice_mut(&mut out, rows, d_out),
        accum,
        MatRef::from_row_major_slice(x, rows, d_in),
        MatRef::from_row_major_slice_with_stride(weight, d_in, d_out, weight_row_stride),
    );
    out
}

/// [`linear`] on burn-flex tensors: `x` row-major `[…, d_in]`, `weight` `[d_in, d_out]` laid out
/// so that [`matrix_rows`] reads it (`readable_as_rows`), `bias` row-major `[d_out]`; the
/// output has `x`'s shape with `d_out` last. The caller checks the shapes.
pub(crate) fn linear_of_tensors(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
) -> FlexTensor {
    let rows = matrix_rows(weight).expect("a weight made readable_as_rows");
    let (d_in, d_out) = (weight.layout().shape()[0], weight.layout().shape()[1]);
    let out = linear(values(x), rows, bias.map(values), d_in, d_out);
    let mut shape: Vec<usize> = x.layout().shape().iter().copied().collect();
    *shape.last_mut().expect("checked by the caller") = d_out;
    from_shape(out, shape)
}

/// The gradient of [`linear`]'s input, `dy·Wᵀ`: `dy` row-major `[rows, d_out]`, `W` as
/// [`linear`] takes it; row-major `[rows, d_in]`.
pub(crate) fn input_gradient(
    dy: &[f32],
    (weight, weight_row_stride): (&[f32], usize),
    d_in: usize,
    d_out: usize,
) -> Vec<f32> {
    let rows = dy.len() / d_out;
    let mut dx = vec![0.0; rows * d_in];
    product(
        MatMut::from_row_major_slice_mut(&mut dx, rows, d_in),
        Accum::Replace,
        MatRef::from_row_major_slice(dy, rows, d_out),
        MatRef::from_row_major_slice_with_stride(weight, d_in, d_out, weight_row_stride)
            .transpose(),
    );
    dx
}

/// The gradient of [`linear`]'s weight, `xᵀ·dy` (`x` `[rows, d_in]`, `dy` `[rows, d_out]`,
/// both row-major): row-major `[d_in, d_out]`. The sum runs over the rows, which faer does not
/// split: the same bits on any number of threads.
pub(crate) fn weight_gradient(x: &[f32], dy: &[f32], d_in: usize, d_out: usize) -> Vec<f32> {
    let rows = dy.len() / d_out;
    let mut dw = vec![0.0; d_in * d_out];
    product(
        MatMut::from_row_major_slice_mut(&mut dw, d_in, d_out),
        Accum::Replace,
        MatRef::from_row_major_slice(x, rows, d_in).transpose(),
        MatRef::from_row_major_slice(dy, rows, d_out),
    );
    dw
}

/// The gradient of [`linear`]'s bias: the sum of `dy`'s rows (`[rows, d_out]`, row-major), in
/// row order.
pub(crate) fn bias_gradient(dy: &[f32], d_out: usize) -> Vec<f32> {
    let mut db = vec![0.0; d_out];
    for row in dy.chunks_exact(d_out) {
        for (sum, v) in db.iter_mut().zip(row) {
            *sum += v;
        }
    }
    db
}

/// `out (+)= lhs·rhs`, on rayon's threads when the product is large enough to pay for them.
fn product(out: MatMut<'_, f32>, accum: Accum, lhs: MatRef<'_, f32>, rhs: MatRef<'_, f32>) {
    let macs = lhs
        .nrows()
        .saturating_mul(lhs.ncols())
        .saturating_mul(rhs.ncols());
    let par = if macs >= PARALLEL_MACS {
        Par::rayon(0)
    } else {
        Par::Seq
    };
    matmul(out, accum, lhs, rhs, 1.0, par);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wave(n: usize, phase: f32) -> Vec<f32> {
        (0..n).map(|i| (i as f32 * 0.37 + phase).sin()).collect()
    }

    /// Every output against the sum in f64, with and without the bias, serial and parallel.
    #[test]
    fn equals_the_definition() {
        for (rows, d_in, d_out) in [(1, 1, 1), (3, 5, 7), (70, 33, 9), (300, 96, 80)] {
            let (x, w, b) = (
                wave(rows * d_in, 0.1),
                wave(d_in * d_out, 0.7),
                wave(d_out, 1.3),
            );
            for bias in [None, Some(b.as_slice())] {
                let out = linear(&x, (&w, d_out), bias, d_in, d_out);
                assert_eq!(out.len(), rows * d_out);
                for r in 0..rows {
                    for c in 0..d_out {
                        let dot: f64 = (0..d_in)
                            .map(|k| x[r * d_in + k] as f64 * w[k * d_out + c] as f64)
                            .sum();
                        let want = dot + bias.map_or(0.0, |b| b[c] as f64);
                        let got = out[r * d_out + c] as f64;
                        assert!(
                            (got - want).abs() < 1e-5 * (1.0 + dot.abs()),
                            "{got} {want}"
                        );
                    }
                }
            }
        }
    }

    /// The three gradients against sums in f64, the weight read from a wider matrix (a
    /// narrowed one's rows) once, serial and parallel sizes.
    #[test]
    fn gradients_equal_the_definition() {
        for (rows, d_in, d_out, stride) in [(1, 1, 1, 1), (3, 5, 7, 9), (300, 96, 80, 80)] {
            let (x, w, dy) = (
                wave(rows * d_in, 0.1),
                wave(d_in * stride, 0.7),
                wave(rows * d_out, 1.3),
            );
            // `got` against the f64 sum of `terms`, relative to the sum of their magnitudes.
            let sums_to = |got: f32, terms: &mut dyn Iterator<Item = f64>| {
                let (want, scale) = terms.fold((0.0, 0.0), |(s, a), t| (s + t, a + t.abs()));
                assert!(
                    (got as f64 - want).abs() < 1e-5 * (1.0 + scale),
                    "{got} {want}"
                );
            };
            let dx = input_gradient(&dy, (&w, stride), d_in, d_out);
            let dw = weight_gradient(&x, &dy, d_in, d_out);
            let db = bias_gradient(&dy, d_out);
            for r in 0..rows {
                for k in 0..d_in {
                    let mut terms =
                        (0..d_out).map(|c| dy[r * d_out + c] as f64 * w[k * stride + c] as f64);
                    sums_to(dx[r * d_in + k], &mut terms);
                }
            }
            for k in 0..d_in {
                for c in 0..d_out {
                    let mut terms =
                        (0..rows).map(|r| x[r * d_in + k] as f64 * dy[r * d_out + c] as f64);
                    sums_to(dw[k * d_out + c], &mut terms);
                }
            }
            for c in 0..d_out {
                sums_to(db[c], &mut (0..rows).map(|r| dy[r * d_out + c] as f64));
            }
        }
    }

    /// The same bits on one thread and on four, forward and backward, for products large
    /// enough to be spread and with a long inner dimension (the one a splitting library could
    /// cut: `d_in` forward, `d_out` for the input's gradient, the rows for the weight's).
    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        for (rows, d_in, d_out) in [(64, 1536, 48), (6, 8192, 64), (8192, 48, 40)] {
            assert!(rows * d_in * d_out >= PARALLEL_MACS);
            let (x, w, b, dy) = (
                wave(rows * d_in, 0.2),
                wave(d_in * d_out, 0.5),
                wave(d_out, 0.9),
                wave(rows * d_out, 0.4),
            );
            let on = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| {
                    [
                        linear(&x, (&w, d_out), Some(&b), d_in, d_out),
                        input_gradient(&dy, (&w, d_out), d_in, d_out),
                        weight_gradient(&x, &dy, d_in, d_out),
                    ]
                })
            };
            assert_eq!(on(1), on(4));
        }
    }
}
