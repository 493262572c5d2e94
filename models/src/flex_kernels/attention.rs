//! Multi-head attention in one pass over blocks of queries, the scores never materialised
//! beyond a block: `softmax(s·q·kᵀ)·v` per head, read from and written to the projections'
//! own `[N, L, C]` layout (no head split or merge copies).
//!
//! Per batch item, block of `B` queries and head, the scores are computed *transposed*,
//! `Sᵀ = s·K·Qᵀ` (`[Lk, B]`), so that the softmax's reductions over keys run down columns:
//! every pass is a vertical operation on `B`-wide rows (`B` a multiple of 16, whole vectors),
//! with none of the per-row horizontal reductions that dominate a row-wise softmax over the
//! short rows of a tiny or text-conditioned attention (77 keys). Then `O = Pᵀ·V` and each output
//! row is divided by its column's sum. Both products are faer's (`matrix_product.rs`), strides
//! given, so the transposes are free. The result equals the materialised
//! `softmax(q·kᵀ·s)·v` up to float summation order.

use multiversion::multiversion;
use rayon::prelude::*;

use super::matrix_product::{product, Matrix, Par};

/// Every product here runs on the thread of its task (the tasks split the work).
const SERIAL: Par = Par::Seq;
use super::vector_math::exp;
use super::PARALLEL_MIN;

/// The problem: batch `n`, `heads` heads of `d` query/key channels and `dv` value channels,
/// `lq` queries against `lk` keys, scores scaled by `scale`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    pub n: usize,
    pub lq: usize,
    pub lk: usize,
    pub heads: usize,
    pub d: usize,
    pub dv: usize,
    pub scale: f32,
}

impl Shape {
    /// The channels of the queries and keys, and of the values: `heads·d`, `heads·dv`.
    fn widths(&self) -> (usize, usize) {
        (self.heads * self.d, self.heads * self.dv)
    }

    /// Panics unless the slices hold this problem's queries, keys and values.
    fn check(&self, q: &[f32], k: &[f32], v: &[f32]) {
        let (c, cv) = self.widths();
        assert_eq!(q.len(), self.n * self.lq * c, "queries");
        assert_eq!(k.len(), self.n * self.lk * c, "keys");
        assert_eq!(v.len(), self.n * self.lk * cv, "values");
    }
}

/// Most scores held per block (256 KiB of f32, within L2 with the block's keys and values).
const BLOCK_SCORES: usize = 1 << 16;

/// Most queries per block: the column sums live in a stack array of this length.
const MAX_BLOCK: usize = 64;

/// Queries per block: up to [`MAX_BLOCK`], fewer where the keys are many, a multiple of 16 (one AVX-512
/// vector) unless the queries themselves are fewer.
fn block_queries(lq: usize, lk: usize) -> usize {
    let fit = (BLOCK_SCORES / lk.max(1)) / 16 * 16;
    fit.clamp(16, MAX_BLOCK).min(lq)
}

/// Attention of row-major `q` `[n, lq, heads·d]`, `k` `[n, lk, heads·d]` and `v`
/// `[n, lk, heads·dv]`; returns the heads concatenated, `[n, lq, heads·dv]` row-major.
pub(crate) fn attention(q: &[f32], k: &[f32], v: &[f32], shape: Shape) -> Vec<f32> {
    shape.check(q, k, v);
    let Shape {
        n, lq, lk, heads, ..
    } = shape;
    let (c, cv) = shape.widths();
    let mut out = vec![0f32; n * lq * cv];
    if out.is_empty() {
        return out;
    }
    let block = block_queries(lq, lk);
    // One task per block of queries of one batch item, so that a single long sequence still
    // spreads over the threads.
    let task = |item: usize, b: usize, out: &mut [f32], scratch: &mut Vec<f32>| {
        let rows = out.len() / cv;
        let q = &q[(item * lq + b * block) * c..][..rows * c];
        let k = &k[item * lk * c..][..lk * c];
        let v = &v[item * lk * cv..][..lk * cv];
        query_block(q, k, v, out, &shape, scratch);
    };
    if n * heads * lq * lk < PARALLEL_MIN {
        let mut scratch = Vec::new();
        for (item, out) in out.chunks_mut(lq * cv).enumerate() {
            for (b, out) in out.chunks_mut(block * cv).enumerate() {
                task(item, b, out, &mut scratch);
            }
        }
    } else {
        out.par_chunks_mut(lq * cv)
            .enumerate()
            .for_each(|(item, out)| {
                out.par_chunks_mut(block * cv)
                    .enumerate()
                    .for_each_init(Vec::new, |scratch, (b, out)| task(item, b, out, scratch))
            });
    }
    out
}

/// All heads of one block of `rows` queries (`q` `[rows, heads·d]`) into `out`
/// (`[rows, heads·dv]`), against one batch item's keys and values.
fn query_block(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    s: &Shape,
    scratch: &mut Vec<f32>,
) {
    let (c, cv) = s.widths();
    let rows = q.len() / c;
    scratch.resize(s.lk * rows + rows, 0.0);
    let (scores, sums) = scratch.split_at_mut(s.lk * rows);
    for h in 0..s.heads {
        // Sᵀ[j, i] = scale · Σ_c k[j, h·d + c] · q[i, h·d + c]  (`[lk, rows]`, row-major),
        // then O[i, h·dv + c] = Σ_j Pᵀ[j, i] · v[j, h·dv + c] before the division by the sum.
        // SAFETY: `k` holds lk rows of c (row stride c) whose head columns h·d..h·d+d ≤ c,
        // `q` `rows` rows of c; `scores` lk × rows; `v` lk rows of cv; `out` rows × cv.
        unsafe {
            let k = Matrix::rows(k.as_ptr().add(h * s.d), c);
            let q = Matrix::transposed(q.as_ptr().add(h * s.d), c);
            product(
                [s.lk, rows, s.d],
                scores.as_mut_ptr(),
                rows,
                false,
                k,
                q,
                s.scale,
                SERIAL,
            );
        }
        column_softmax(scores, sums, rows);
        unsafe {
            let p = Matrix::transposed(scores.as_ptr(), rows);
            let v = Matrix::rows(v.as_ptr().add(h * s.dv), cv);
            let out = out.as_mut_ptr().add(h * s.dv);
            product([rows, s.dv, s.lk], out, cv, false, p, v, 1.0, SERIAL);
        }
        for (row, &sum) in out.chunks_mut(cv).zip(sums.iter()) {
            let inverse = 1.0 / sum;
            row[h * s.dv..][..s.dv]
                .iter_mut()
                .for_each(|x| *x *= inverse);
        }
    }
}

/// `scores` `[lk, rows]` ← `exp(scores − column max)`, and each column's sum into `sums`: the
/// softmax of every column before its division. A column of −∞ only gives NaN, as torch's.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn column_softmax(scores: &mut [f32], sums: &mut [f32], rows: usize) {
    let sums = &mut sums[..rows];
    sums.fill(f32::NEG_INFINITY);
    for key in scores.chunks_exact(rows) {
        for (max, &x) in sums.iter_mut().zip(key) {
            *max = max.max(x);
        }
    }
    // `sums` holds the maxima until the exponentials are taken; then their sums.
    let mut totals = [0f32; MAX_BLOCK];
    let totals = &mut totals[..rows];
    for key in scores.chunks_exact_mut(rows) {
        for ((x, &max), total) in key.iter_mut().zip(sums.iter()).zip(totals.iter_mut()) {
            *x = exp(*x - max);
            *total += *x;
        }
    }
    sums.copy_from_slice(totals);
}

/// Gradients of [`attention`] with respect to `q`, `k` and `v` (in their layouts) from the
/// output's gradient `dout` (`[n, lq, heads·dv]`), the probabilities recomputed block by
/// block rather than stored (as flash attention's backward pass does):
/// `dV = Pᵀ·dO`, `dP = dO·Vᵀ`, `dS = P∘(dP − rowsum(P∘dP))`, `dQ = s·dS·K`, `dK = s·dSᵀ·Q`.
pub(crate) fn attention_backward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    dout: &[f32],
    shape: Shape,
) -> [Vec<f32>; 3] {
    shape.check(q, k, v);
    let Shape {
        n,
        lq,
        lk,
        heads,
        d,
        dv,
        ..
    } = shape;
    let (c, cv) = shape.widths();
    assert_eq!(dout.len(), n * lq * cv, "output gradient");
    // One task per batch item and head, each into its own buffers (the heads' gradients
    // interleave in memory), scattered into place after.
    let task = |task: usize| {
        let (item, h) = (task / heads, task % heads);
        fn operand(x: &[f32], [item, len, width, offset]: [usize; 4]) -> Strided<'_> {
            let values = &x[item * len * width..][..len * width];
            Strided {
                values,
                stride: width,
                offset,
            }
        }
        let head = HeadOperands {
            q: operand(q, [item, lq, c, h * d]),
            k: operand(k, [item, lk, c, h * d]),
            v: operand(v, [item, lk, cv, h * dv]),
            dout: operand(dout, [item, lq, cv, h * dv]),
        };
        head_backward(&head, &shape)
    };
    let heads_grads: Vec<[Vec<f32>; 3]> = if n * heads * lq * lk < PARALLEL_MIN {
        (0..n * heads).map(task).collect()
    } else {
        (0..n * heads).into_par_iter().map(task).collect()
    };
    let mut grads = [
        vec![0f32; q.len()],
        vec![0f32; k.len()],
        vec![0f32; v.len()],
    ];
    for (task, head_grads) in heads_grads.iter().enumerate() {
        let (item, h) = (task / heads, task % heads);
        let places = [(lq, c, d), (lk, c, d), (lk, cv, dv)];
        for ((grad, local), (len, width, head_width)) in
            grads.iter_mut().zip(head_grads).zip(places)
        {
            let rows = grad[item * len * width..][..len * width].chunks_mut(width);
            for (row, local) in rows.zip(local.chunks(head_width)) {
                row[h * head_width..][..head_width].copy_from_slice(local);
            }
        }
    }
    grads
}

/// One head's columns (`offset..`, rows `stride` apart) of one batch item's `[L, C]` slice.
struct Strided<'a> {
    values: &'a [f32],
    stride: usize,
    offset: usize,
}

impl Strided<'_> {
    /// The head's columns from row `row` on, as a matrix operand.
    fn rows(&self, row: usize) -> Matrix {
        Matrix::rows(
            self.values[row * self.stride + self.offset..].as_ptr(),
            self.stride,
        )
    }
}

struct HeadOperands<'a> {
    q: Strided<'a>,
    k: Strided<'a>,
    v: Strided<'a>,
    dout: Strided<'a>,
}

/// One batch item's and head's `[dq (lq×d), dk (lk×d), dv (lk×dv)]`, row-major.
fn head_backward(o: &HeadOperands, s: &Shape) -> [Vec<f32>; 3] {
    let (lq, lk, d, dv) = (s.lq, s.lk, s.d, s.dv);
    let (mut dq, mut dk, mut dv_) = (vec![0f32; lq * d], vec![0f32; lk * d], vec![0f32; lk * dv]);
    let block = block_queries(lq, lk);
    let mut probabilities = vec![0f32; lk * block];
    let mut scores_grad = vec![0f32; lk * block];
    let mut columns = vec![0f32; block];
    for start in (0..lq).step_by(block.max(1)) {
        let rows = block.min(lq - start);
        let (p, ds) = (
            &mut probabilities[..lk * rows],
            &mut scores_grad[..lk * rows],
        );
        let first = start == 0;
        let (q, k) = (o.q.rows(start), o.k.rows(0));
        let (v, dout) = (o.v.rows(0), o.dout.rows(start));
        // SAFETY (every product below): `Strided::rows` addresses one head's columns of rows
        // inside the item's slice (checked there), `p` and `ds` hold lk × rows, and `dq`,
        // `dk`, `dv_` exactly the products written into them.
        unsafe {
            // Pᵀ = softmax over keys of Sᵀ = s·K·Q_blockᵀ, `[lk, rows]`.
            product(
                [lk, rows, d],
                p.as_mut_ptr(),
                rows,
                false,
                k,
                q.t(),
                s.scale,
                SERIAL,
            );
            column_softmax(p, &mut columns, rows);
            normalise_columns(p, &mut columns[..rows]);
            // dV += Pᵀ·dO_block, `[lk, dv]`.
            let pt = Matrix::rows(p.as_ptr(), rows);
            product(
                [lk, dv, rows],
                dv_.as_mut_ptr(),
                dv,
                !first,
                pt,
                dout,
                1.0,
                SERIAL,
            );
            // dPᵀ = V·dO_blockᵀ, `[lk, rows]`.
            product(
                [lk, rows, dv],
                ds.as_mut_ptr(),
                rows,
                false,
                v,
                dout.t(),
                1.0,
                SERIAL,
            );
        }
        softmax_columns_backward(p, ds, &mut columns[..rows]);
        unsafe {
            // dQ_block = s·(dSᵀ)ᵀ·K, `[rows, d]`; dK += s·dSᵀ·Q_block, `[lk, d]`.
            let dst = Matrix::transposed(ds.as_ptr(), rows);
            product(
                [rows, d, lk],
                dq[start * d..].as_mut_ptr(),
                d,
                false,
                dst,
                k,
                s.scale,
                SERIAL,
            );
            let dst = Matrix::rows(ds.as_ptr(), rows);
            product(
                [lk, d, rows],
                dk.as_mut_ptr(),
                d,
                !first,
                dst,
                q,
                s.scale,
                SERIAL,
            );
        }
    }
    [dq, dk, dv_]
}

/// Each column of `p` `[lk, rows]` divided by its entry of `sums`.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn normalise_columns(p: &mut [f32], sums: &mut [f32]) {
    sums.iter_mut().for_each(|s| *s = 1.0 / *s);
    for key in p.chunks_exact_mut(sums.len()) {
        for (x, &inverse) in key.iter_mut().zip(sums.iter()) {
            *x *= inverse;
        }
    }
}

/// Softmax's backward pass down the columns of `pᵀ` `[lk, rows]`, in place over the
/// probabilities' gradient: `dsᵀ = pᵀ∘(dpᵀ − Σ_keys pᵀ∘dpᵀ)`; `dots` is scratch of `rows`.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn softmax_columns_backward(p: &[f32], dp: &mut [f32], dots: &mut [f32]) {
    let rows = dots.len();
    dots.fill(0.0);
    for (p, dp) in p.chunks_exact(rows).zip(dp.chunks_exact(rows)) {
        for ((dot, &p), &dp) in dots.iter_mut().zip(p).zip(dp) {
            *dot += p * dp;
        }
    }
    for (p, dp) in p.chunks_exact(rows).zip(dp.chunks_exact_mut(rows)) {
        for ((dp, &p), &dot) in dp.iter_mut().zip(p).zip(dots.iter()) {
            *dp = p * (*dp - dot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The materialised definition in f64: per item, head and query, softmax over the keys of
    /// the scaled dot products, then the weighted sum of the values.
    fn reference(q: &[f32], k: &[f32], v: &[f32], s: &Shape) -> Vec<f64> {
        let (c, cv) = (s.heads * s.d, s.heads * s.dv);
        let mut out = vec![0f64; s.n * s.lq * cv];
        for item in 0..s.n {
            for h in 0..s.heads {
                for i in 0..s.lq {
                    let qi = &q[(item * s.lq + i) * c + h * s.d..][..s.d];
                    let scores: Vec<f64> = (0..s.lk)
                        .map(|j| {
                            let kj = &k[(item * s.lk + j) * c + h * s.d..][..s.d];
                            let dot: f64 =
                                qi.iter().zip(kj).map(|(&a, &b)| a as f64 * b as f64).sum();
                            dot * s.scale as f64
                        })
                        .collect();
                    let max = scores.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x));
                    let weights: Vec<f64> = scores.iter().map(|&x| (x - max).exp()).collect();
                    let total: f64 = weights.iter().sum();
                    for (j, w) in weights.iter().enumerate() {
                        let vj = &v[(item * s.lk + j) * cv + h * s.dv..][..s.dv];
                        let o = &mut out[(item * s.lq + i) * cv + h * s.dv..][..s.dv];
                        for (o, &x) in o.iter_mut().zip(vj) {
                            *o += w / total * x as f64;
                        }
                    }
                }
            }
        }
        out
    }

    /// Shapes of the tiny UNet (4-wide heads, 77 text keys), a long sequence split into
    /// several blocks with a ragged last one, a single head (the VAE's), unequal key and value
    /// widths, and enough work to take the parallel path: equal to the f64 definition.
    #[test]
    fn equals_the_materialised_definition() {
        let shapes = [
            (2, 64, 77, 8, 4, 4),
            (1, 200, 33, 2, 8, 8),
            (3, 16, 16, 1, 32, 32),
            (2, 5, 9, 3, 4, 6),
            (2, 1300, 70, 2, 8, 8),
        ];
        for (n, lq, lk, heads, d, dv) in shapes {
            let shape = Shape {
                n,
                lq,
                lk,
                heads,
                d,
                dv,
                scale: (d as f32).powf(-0.5),
            };
            let values = |len: usize, seed: f32| -> Vec<f32> {
                (0..len)
                    .map(|i| ((i as f32 + seed) * 0.618_034).sin() * 3.0)
                    .collect()
            };
            let q = values(n * lq * heads * d, 0.5);
            let k = values(n * lk * heads * d, 1.5);
            let v = values(n * lk * heads * dv, 2.5);
            let ours = attention(&q, &k, &v, shape);
            let expected = reference(&q, &k, &v, &shape);
            for (i, (&o, &e)) in ours.iter().zip(&expected).enumerate() {
                assert!(
                    (o as f64 - e).abs() < 2e-5 * (1.0 + e.abs()),
                    "{shape:?} {i}: {o} {e}"
                );
            }
        }
    }

    /// A NaN in one key reaches every query of its item and head, and nothing else.
    #[test]
    fn nan_reaches_its_head_only() {
        let shape = Shape {
            n: 2,
            lq: 3,
            lk: 4,
            heads: 2,
            d: 2,
            dv: 2,
            scale: 0.5,
        };
        let q = vec![0.25f32; 2 * 3 * 4];
        let mut k = vec![0.5f32; 2 * 4 * 4];
        let v = vec![1.0f32; 2 * 4 * 4];
        k[(4 + 1) * 4 + 2] = f32::NAN; // item 1, key 1, head 1
        let out = attention(&q, &k, &v, shape);
        for (i, &o) in out.iter().enumerate() {
            let (item, head) = (i / 12, i % 4 / 2);
            assert_eq!(o.is_nan(), item == 1 && head == 1, "{i}: {o}");
        }
    }
}
