//! Matrix products of the fused kernels: faer's, called with strides, so that transposes, head
//! slices of a `[L, heads·d]` layout and row blocks need no copies.
//!
//! faer rather than the `gemm` crate burn-flex calls: faer's x86-64 kernels use AVX-512 where
//! the CPU has it, `gemm`'s run AVX2 unless built with its `x86-v4` feature (which slowed
//! tiny-SD's small products on Zen 4). On a 2-core Intel Xeon (AVX-512) the switch took 11 % off
//! a tiny-SD rollout and 9 % off a LoRA step (medians of 6 alternating runs); on a 2-core Zen 4
//! the Inception network was unchanged. faer splits a product over rows and columns, never over
//! the inner dimension, so results do not depend on the thread count.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef};

pub(crate) use faer::Par;

/// A matrix operand of [`product`]: its first element and its row and column strides.
#[derive(Clone, Copy)]
pub(crate) struct Matrix {
    at: *const f32,
    row_stride: usize,
    column_stride: usize,
}

impl Matrix {
    pub(crate) fn rows(at: *const f32, row_stride: usize) -> Self {
        Matrix {
            at,
            row_stride,
            column_stride: 1,
        }
    }

    /// The transpose of the row-major matrix at `at` whose rows are `row_stride` apart.
    pub(crate) fn transposed(at: *const f32, row_stride: usize) -> Self {
        Matrix {
            at,
            row_stride: 1,
            column_stride: row_stride,
        }
    }

    /// This matrix transposed.
    pub(crate) fn t(self) -> Self {
        Matrix {
            at: self.at,
            row_stride: self.column_stride,
            column_stride: self.row_stride,
        }
    }
}

/// `dst` (`m × n`, rows `dst_stride` apart) ← `scale·lhs·rhs` (`lhs` `m × inner`), added to
/// what `dst` holds when `accumulate`; on the calling thread (`Par::Seq`), or spread over
/// rayon's.
///
/// # Safety
/// Every element of the three matrices, as their strides address them, must lie in an
/// allocation the pointer came from (`dst`'s writable and not otherwise borrowed), and the
/// strides must fit in `isize`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn product(
    [m, n, inner]: [usize; 3],
    dst: *mut f32,
    dst_stride: usize,
    accumulate: bool,
    lhs: Matrix,
    rhs: Matrix,
    scale: f32,
    threads: Par,
) {
    let accum = match accumulate {
        true => Accum::Add,
        false => Accum::Replace,
    };
    // SAFETY: the caller's contract: faer reads and writes nothing outside these views.
    unsafe {
        let operand = |matrix: Matrix, rows, columns| {
            MatRef::from_raw_parts(
                matrix.at,
                rows,
                columns,
                matrix.row_stride as isize,
                matrix.column_stride as isize,
            )
        };
        let dst = MatMut::from_raw_parts_mut(dst, m, n, dst_stride as isize, 1);
        matmul(
            dst,
            accum,
            operand(lhs, m, inner),
            operand(rhs, inner, n),
            scale,
            threads,
        );
    }
}
