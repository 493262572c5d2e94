//! Softmax over the last dimension, each row in three vectorised passes.

use multiversion::multiversion;
use rayon::prelude::*;

use super::PARALLEL_MIN;

use super::vector_math::exp;

/// Softmax of every `row_len`-long row of `xs`, in place: `exp(x − max)` over its sum, as
/// torch's. A row of −∞ only is NaN (as torch's); −∞ entries of other rows are 0.
pub(crate) fn softmax_rows(xs: &mut [f32], row_len: usize) {
    if row_len == 0 {
        return;
    }
    if xs.len() < PARALLEL_MIN {
        xs.chunks_mut(row_len).for_each(softmax_row);
    } else {
        let rows_per_task = (PARALLEL_MIN / 4).div_ceil(row_len);
        xs.par_chunks_mut(rows_per_task * row_len)
            .for_each(|rows| rows.chunks_mut(row_len).for_each(softmax_row));
    }
}

#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn softmax_row(row: &mut [f32]) {
    let max = lane_fold(row, f32::NEG_INFINITY, f32::max);
    for x in row.iter_mut() {
        *x = exp(*x - max);
    }
    let inverse = 1.0 / lane_fold(row, 0.0, |a, b| a + b);
    for x in row.iter_mut() {
        *x *= inverse;
    }
}

/// `fold` of `xs` in eight independent lanes (so that it vectorises), then across them.
#[inline(always)]
fn lane_fold(xs: &[f32], init: f32, f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut lanes = [init; 8];
    let chunks = xs.chunks_exact(8);
    let tail = chunks.remainder().iter().fold(init, |a, &x| f(a, x));
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = f(*lane, x);
        }
    }
    lanes.iter().fold(tail, |a, &x| f(a, x))
}

/// Softmax's input gradient from its output `y` and the output's gradient, in place over
/// `dy`: `dx = y·(dy − Σ dy·y)` per `row_len`-long row.
pub(crate) fn softmax_backward_rows(y: &[f32], dy: &mut [f32], row_len: usize) {
    if row_len == 0 {
        return;
    }
    let rows = |(y, dy): (&[f32], &mut [f32])| {
        y.chunks(row_len)
            .zip(dy.chunks_mut(row_len))
            .for_each(|(y, dy)| softmax_backward_row(y, dy))
    };
    if y.len() < PARALLEL_MIN {
        rows((y, dy));
    } else {
        let chunk = (PARALLEL_MIN / 4).div_ceil(row_len) * row_len;
        y.par_chunks(chunk)
            .zip(dy.par_chunks_mut(chunk))
            .for_each(rows);
    }
}

#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn softmax_backward_row(y: &[f32], dy: &mut [f32]) {
    let mut lanes = [0f32; 8];
    let n = y.len() / 8 * 8;
    for (y, dy) in y[..n].chunks_exact(8).zip(dy[..n].chunks_exact(8)) {
        for j in 0..8 {
            lanes[j] += y[j] * dy[j];
        }
    }
    let mut dot: f32 = lanes.iter().sum();
    for i in n..y.len() {
        dot += y[i] * dy[i];
    }
    for (&y, dy) in y.iter().zip(dy.iter_mut()) {
        *dy = y * (*dy - dot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of several lengths (tails included), serial and parallel, with −∞ entries: equal
    /// to the f64 definition within f32 rounding; rows sum to 1.
    #[test]
    fn rows_equal_the_definition() {
        for row_len in [1, 7, 8, 77, 256] {
            let rows = PARALLEL_MIN / row_len + 3;
            let mut xs: Vec<f32> = (0..rows * row_len)
                .map(|i| (i as f32 * 0.618_034).sin() * 20.0)
                .collect();
            if row_len > 1 {
                xs[1] = f32::NEG_INFINITY;
            }
            let original = xs.clone();
            softmax_rows(&mut xs, row_len);
            for (row, ours) in original.chunks(row_len).zip(xs.chunks(row_len)) {
                // exp in f64 of the f32 differences (their rounding is the input's to exp).
                let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
                let shifted = |x: f32| ((x - max) as f64).exp();
                let sum: f64 = row.iter().map(|&x| shifted(x)).sum();
                for (&x, &p) in row.iter().zip(ours) {
                    let reference = shifted(x) / sum;
                    assert!(
                        (p as f64 - reference).abs() <= 1e-6 * reference + 1e-30,
                        "{row_len}: {x} {p} {reference}"
                    );
                }
                let total: f32 = ours.iter().sum();
                assert!((total - 1.0).abs() < 1e-5);
            }
            assert!(row_len == 1 || xs[1] == 0.0);
        }
    }
}
