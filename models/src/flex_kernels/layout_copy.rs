//! Copying a permuted view (`swap_dims`, `permute`) into row-major order.
//!
//! burn-flex copies a non-contiguous tensor (a `reshape` after a `swap_dims`) one element at a
//! time through its generic strided iterator: 7 % of a tiny-SD rollout went to attention's
//! head merge and the transformer's channel/token swaps. The two layouts those produce are
//! copied here by runs (innermost dimension contiguous in the source) or by tiles (the
//! innermost two dimensions transposed), as PyTorch's copy kernels do.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::PARALLEL_MIN;

/// Side of the square tiles a transposing copy moves at a time (a tile of f32 fits L1).
const TILE: usize = 32;

/// A view of `src`: element `[i₀, …, i_k]` at `offset + Σ iⱼ·strides[j]`.
pub(crate) struct View<'a> {
    pub src: &'a [f32],
    pub offset: usize,
    pub shape: &'a [usize],
    pub strides: &'a [usize],
}

/// The view's elements in row-major order, or `None` for a layout this does not handle
/// (the caller then takes burn's copy).
pub(crate) fn copy_row_major(view: &View<'_>) -> Option<Vec<f32>> {
    let (shape, strides) = simplified(view.shape, view.strides);
    let count: usize = shape.iter().product();
    let rank = shape.len();
    let mut out: Vec<f32> = Vec::with_capacity(count);
    let plan = if rank == 0 || strides[rank - 1] == 1 {
        Plan::Runs
    } else if rank >= 2 && strides[rank - 2] == 1 {
        Plan::Tiles
    } else {
        return None;
    };
    // A block: for runs, the runs along the innermost outer dimension (`m` runs `stride`
    // apart, so that the outer offset is computed once per `m` runs); for tiles, one
    // transpose.
    let (outer_shape, inner, m, stride) = match plan {
        Plan::Runs if rank >= 2 => (
            &shape[..rank - 2],
            shape[rank - 1],
            shape[rank - 2],
            strides[rank - 2],
        ),
        Plan::Runs => (&shape[..0], shape.last().copied().unwrap_or(1), 1, 0),
        Plan::Tiles => (&shape[..rank - 2], shape[rank - 2] * shape[rank - 1], 1, 0),
    };
    let outer_strides = &strides[..outer_shape.len()];
    let block = |(index, dst): (usize, &mut [MaybeUninit<f32>])| {
        let base = view.offset + source_offset(index, outer_shape, outer_strides);
        match plan {
            Plan::Runs => {
                for (j, run) in dst.chunks_mut(inner).enumerate() {
                    let start = base + j * stride;
                    for (d, s) in run.iter_mut().zip(&view.src[start..start + inner]) {
                        d.write(*s);
                    }
                }
            }
            Plan::Tiles => transpose(
                view.src,
                base,
                shape[rank - 2],
                shape[rank - 1],
                strides[rank - 1],
                dst,
            ),
        }
    };
    let inner = inner * m;
    let spare = &mut out.spare_capacity_mut()[..count];
    if inner > 0 {
        if count < PARALLEL_MIN {
            spare.chunks_mut(inner).enumerate().for_each(block);
        } else {
            spare.par_chunks_mut(inner).enumerate().for_each(block);
        }
    }
    // SAFETY: the blocks tile `0..count` (each of the `count / inner` outer indices writes its
    // `inner` elements: `m` whole runs, or every (row, column) of a transpose).
    unsafe { out.set_len(count) };
    Some(out)
}

/// For a layout that is a permutation of a dense one (`swap_dims`, `permute` of a contiguous
/// tensor: every element once, no gaps), the order of its dimensions from the outermost in
/// memory to the innermost; `None` for any other layout.
pub(crate) fn dense_permutation(shape: &[usize], strides: &[isize]) -> Option<Vec<usize>> {
    let mut order: Vec<usize> = (0..shape.len()).collect();
    // Outermost first; size-1 dimensions (any stride) anywhere consistent.
    order.sort_by_key(|&d| {
        (
            std::cmp::Reverse(if shape[d] == 1 { 0 } else { strides[d] }),
            d,
        )
    });
    let mut expected = 1isize;
    for &d in order.iter().rev() {
        if shape[d] != 1 && strides[d] != expected {
            return None;
        }
        expected *= shape[d] as isize;
    }
    Some(order)
}

/// The row-major `values` of a tensor of `shape`, rearranged into the memory order `order`
/// (from [`dense_permutation`]): the buffer of a tensor with that permuted layout.
pub(crate) fn into_memory_order(values: &[f32], shape: &[usize], order: &[usize]) -> Vec<f32> {
    let mut strides = vec![1usize; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    let view_shape: Vec<usize> = order.iter().map(|&d| shape[d]).collect();
    let view_strides: Vec<usize> = order.iter().map(|&d| strides[d]).collect();
    let view = View {
        src: values,
        offset: 0,
        shape: &view_shape,
        strides: &view_strides,
    };
    copy_row_major(&view).unwrap_or_else(|| gather(&view))
}

/// The view's elements in row-major order, one at a time (layouts [`copy_row_major`] does
/// not take).
fn gather(view: &View<'_>) -> Vec<f32> {
    let count: usize = view.shape.iter().product();
    (0..count)
        .map(|i| view.src[view.offset + source_offset(i, view.shape, view.strides)])
        .collect()
}

#[derive(Clone, Copy)]
enum Plan {
    /// The innermost dimension is contiguous in the source: copy it as runs.
    Runs,
    /// The second-innermost is: transpose the innermost two, tile by tile.
    Tiles,
}

/// `dst[r·cols + c] = src[base + r + c·column_stride]` for the `rows × cols` block.
fn transpose(
    src: &[f32],
    base: usize,
    rows: usize,
    cols: usize,
    column_stride: usize,
    dst: &mut [MaybeUninit<f32>],
) {
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for c in c0..(c0 + TILE).min(cols) {
                let column = &src[base + c * column_stride..];
                for r in r0..(r0 + TILE).min(rows) {
                    dst[r * cols + c].write(column[r]);
                }
            }
        }
    }
}

/// Source offset of the `index`-th element (row-major) of a `shape` with these strides.
fn source_offset(mut index: usize, shape: &[usize], strides: &[usize]) -> usize {
    let mut offset = 0;
    for (&size, &stride) in shape.iter().zip(strides).rev() {
        offset += (index % size) * stride;
        index /= size;
    }
    offset
}

/// The same view with size-1 dimensions dropped and each dimension merged into the next one
/// where the source lays them out as one (stride = next stride × next size).
fn simplified(shape: &[usize], strides: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let mut dims: Vec<(usize, usize)> = Vec::new();
    for (&size, &stride) in shape.iter().zip(strides) {
        if size == 1 {
            continue;
        }
        match dims.last_mut() {
            Some(last) if last.1 == stride * size => *last = (last.0 * size, stride),
            _ => dims.push((size, stride)),
        }
    }
    if shape.contains(&0) {
        dims = vec![(0, 1)];
    }
    dims.into_iter().unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The element-by-element definition.
    fn reference(view: &View<'_>) -> Vec<f32> {
        gather(view)
    }

    /// A swapped view's gradient laid out in the view's memory order reads back, through the
    /// view's strides, as the row-major gradient; gapped and overlapping layouts are refused.
    #[test]
    fn gradients_go_back_in_the_views_memory_order() {
        // [2, 3, 4] contiguous, dims 0 and 2 swapped: shape [4, 3, 2], strides [1, 4, 12].
        let (shape, strides) = ([4usize, 3, 2], [1isize, 4, 12]);
        let order = dense_permutation(&shape, &strides).expect("a permutation");
        assert_eq!(order, [2, 1, 0]);
        let grad: Vec<f32> = (0..24).map(|i| i as f32).collect();
        let memory = into_memory_order(&grad, &shape, &order);
        for (i, &g) in grad.iter().enumerate() {
            let (a, b, c) = (i / 6, i / 2 % 3, i % 2);
            let at = a as isize * strides[0] + b as isize * strides[1] + c as isize * strides[2];
            assert_eq!(memory[at as usize], g);
        }
        assert!(dense_permutation(&[4, 5], &[10, 2]).is_none());
        assert!(dense_permutation(&[4, 5], &[0, 1]).is_none());
        assert_eq!(
            dense_permutation(&[3, 1, 2], &[2, 99, 1]),
            Some(vec![0, 2, 1])
        );
    }

    /// Permutations of 3-d and 4-d tensors (with offsets, size-1 and empty dims, serial and
    /// parallel sizes, tile edges): every handled layout equals the definition, and the
    /// layouts attention and the transformer make are handled.
    #[test]
    fn copies_equal_the_definition() {
        let src: Vec<f32> = (0..300_000).map(|i| i as f32).collect();
        let contiguous = |shape: &[usize]| {
            let mut strides = vec![1; shape.len()];
            for i in (0..shape.len().saturating_sub(1)).rev() {
                strides[i] = strides[i + 1] * shape[i + 1];
            }
            strides
        };
        let cases: [(&[usize], &[usize]); 6] = [
            (&[2, 3, 5, 8], &[0, 2, 1, 3]),  // attention's head merge / split
            (&[8, 8, 64, 8], &[0, 2, 1, 3]), // the same, parallel
            (&[4, 40, 70], &[0, 2, 1]),      // channels ↔ tokens, tile edges
            (&[3, 333, 97], &[0, 2, 1]),     // the same, parallel
            (&[2, 1, 7, 1, 5], &[0, 4, 2, 1, 3]),
            (&[3, 0, 4], &[0, 2, 1]),
        ];
        let mut handled = 0;
        for (shape, perm) in cases {
            let strides = contiguous(shape);
            let view_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
            let view_strides: Vec<usize> = perm.iter().map(|&p| strides[p]).collect();
            for offset in [0, 17] {
                let view = View {
                    src: &src,
                    offset,
                    shape: &view_shape,
                    strides: &view_strides,
                };
                if let Some(copy) = copy_row_major(&view) {
                    assert_eq!(copy, reference(&view), "{shape:?} {perm:?}");
                    handled += 1;
                }
            }
        }
        assert_eq!(handled, 12);
        // A layout neither plan takes (no unit stride among the last two dims).
        let view = View {
            src: &src,
            offset: 0,
            shape: &[4, 5],
            strides: &[10, 2],
        };
        assert!(copy_row_major(&view).is_none());
    }
}
