//! Matrix products of the fused kernels: burn-flex's own `gemm` crate called with strides,
//! so that transposes, head slices of a `[L, heads·d]` layout and row blocks need no copies.

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
/// what `dst` holds when `accumulate`; on the calling thread, or spread over rayon's when
/// `threads` is `gemm::Parallelism::Rayon(_)`.
///
/// # Safety
/// Every element of the three matrices, as their strides address them, must lie in an
/// allocation the pointer came from (`dst`'s writable and not otherwise borrowed).
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn product(
    [m, n, inner]: [usize; 3],
    dst: *mut f32,
    dst_stride: usize,
    accumulate: bool,
    lhs: Matrix,
    rhs: Matrix,
    scale: f32,
    threads: gemm::Parallelism,
) {
    // SAFETY: the caller's contract; `gemm` reads and writes nothing else.
    unsafe {
        gemm::gemm(
            m,
            n,
            inner,
            dst,
            1,
            dst_stride as isize,
            accumulate,
            lhs.at,
            lhs.column_stride as isize,
            lhs.row_stride as isize,
            rhs.at,
            rhs.column_stride as isize,
            rhs.row_stride as isize,
            1.0,
            scale,
            false,
            false,
            false,
            threads,
        )
    }
}
