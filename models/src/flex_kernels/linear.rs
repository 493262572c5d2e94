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
//! faer splits the work over rows and columns, never over `d_in`, so each output is summed in
//! the same order whatever the number of threads (a test holds it to that).

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

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
    let par = if rows.saturating_mul(d_in).saturating_mul(d_out) >= PARALLEL_MACS {
        Par::rayon(0)
    } else {
        Par::Seq
    };
    matmul(
        MatMut::from_row_major_slice_mut(&mut out, rows, d_out),
        accum,
        MatRef::from_row_major_slice(x, rows, d_in),
        MatRef::from_row_major_slice_with_stride(weight, d_in, d_out, weight_row_stride),
        1.0,
        par,
    );
    out
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

    /// The same bits on one thread and on four, for a product large enough to be spread and
    /// with a long inner dimension (the one a splitting library could cut).
    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        for (rows, d_in, d_out) in [(64, 1536, 48), (6, 8192, 64)] {
            assert!(rows * d_in * d_out >= PARALLEL_MACS);
            let (x, w, b) = (
                wave(rows * d_in, 0.2),
                wave(d_in * d_out, 0.5),
                wave(d_out, 0.9),
            );
            let on = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| linear(&x, (&w, d_out), Some(&b), d_in, d_out))
            };
            assert_eq!(on(1), on(4));
        }
    }
}
