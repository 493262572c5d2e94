//! 2-D max and average pooling, one image plane at a time in two passes (along rows, then down
//! columns), planes in parallel.
//!
//! burn-flex 0.21 pools through its 3-D path with a closure call per tap: in the FID Inception
//! (3×3 average pools in every block's pool branch, 3×3 max pools between the stages) its
//! `avg_pool2d` and `max_pool2d` were 28 % of the time per image (`perf`, 512² inputs).

use rayon::prelude::*;

use super::PARALLEL_MIN;

/// What a window reduces to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pool {
    /// The largest value; NaN wherever the window holds one (as PyTorch's).
    Max,
    /// The mean, over the whole window (`count_padding`) or over its taps inside the input
    /// (PyTorch's `count_include_pad=False`).
    Average { count_padding: bool },
}

/// A pooling window: `kernel`, `stride` and `padding` per axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl Window {
    /// The output's spatial size for an input of `[h, w]` (floor mode); `None` where a stride or
    /// the kernel is 0, the kernel does not fit in the padded input, or the padding exceeds half
    /// the kernel (PyTorch refuses that: some windows would hold no input at all).
    pub fn output_size(&self, [h, w]: [usize; 2]) -> Option<[usize; 2]> {
        let out = |size: usize, axis: usize| {
            let (k, s, p) = (self.kernel[axis], self.stride[axis], self.padding[axis]);
            let padded = size + 2 * p;
            (s > 0 && k > 0 && 2 * p <= k && padded >= k).then(|| (padded - k) / s + 1)
        };
        Some([out(h, 0)?, out(w, 1)?])
    }

    /// The input positions `[start, end)` the `o`-th window covers along `axis`, clipped to the
    /// input's `size`.
    fn taps(&self, axis: usize, o: usize, size: usize) -> (usize, usize) {
        let start = o * self.stride[axis];
        let first = start.saturating_sub(self.padding[axis]);
        let end = (start + self.kernel[axis])
            .saturating_sub(self.padding[axis])
            .min(size);
        (first, end)
    }
}

/// `x` `[n, c, h, w]` (row-major) pooled: `[n, c, Ho, Wo]`. The caller checks the shape
/// ([`Window::output_size`] is `Some`).
pub(crate) fn pool2d(x: &[f32], [n, c, h, w]: [usize; 4], window: &Window, pool: Pool) -> Vec<f32> {
    let [ho, wo] = window.output_size([h, w]).expect("checked by the caller");
    assert_eq!(x.len(), n * c * h * w, "input");
    let mut out = vec![0f32; n * c * ho * wo];
    if out.is_empty() {
        return out;
    }
    // Each output column's input columns, and (average pools) the divisor of each output.
    let columns: Vec<(usize, usize)> = (0..wo).map(|ox| window.taps(1, ox, w)).collect();
    let rows: Vec<(usize, usize)> = (0..ho).map(|oy| window.taps(0, oy, h)).collect();
    let plane = |(src, dst): (&[f32], &mut [f32]), across: &mut Vec<f32>| {
        // Pass 1, along rows: across[y][ox] reduces the window's columns of input row y.
        across.resize(h * wo, 0.0);
        for (line, reduced) in src.chunks_exact(w).zip(across.chunks_exact_mut(wo)) {
            for (r, &(first, end)) in reduced.iter_mut().zip(&columns) {
                *r = reduce(pool, &line[first..end]);
            }
        }
        // Pass 2, down columns: out[oy][ox] reduces across[first..end][ox].
        for (out_row, &(first, end)) in dst.chunks_exact_mut(wo).zip(&rows) {
            // Padding ≤ kernel/2 (`output_size`) leaves every window at least one input row.
            let mut taps = across[first * wo..end * wo].chunks_exact(wo);
            out_row.copy_from_slice(taps.next().expect("a window holds an input row"));
            for row in taps {
                for (o, &v) in out_row.iter_mut().zip(row) {
                    *o = match pool {
                        Pool::Max => max_nan(*o, v),
                        Pool::Average { .. } => *o + v,
                    };
                }
            }
            if let Pool::Average { count_padding } = pool {
                for (o, &(cf, ce)) in out_row.iter_mut().zip(&columns) {
                    let count = match count_padding {
                        true => window.kernel[0] * window.kernel[1],
                        false => (end - first) * (ce - cf),
                    };
                    *o /= count as f32;
                }
            }
        }
    };
    if x.len() >= PARALLEL_MIN {
        out.par_chunks_mut(ho * wo)
            .zip(x.par_chunks(h * w))
            .for_each_init(Vec::new, |across, (dst, src)| plane((src, dst), across));
    } else {
        let mut across = Vec::new();
        for (dst, src) in out.chunks_mut(ho * wo).zip(x.chunks(h * w)) {
            plane((src, dst), &mut across);
        }
    }
    out
}

/// One window row's reduction (sum for averages, NaN-propagating maximum).
#[inline]
fn reduce(pool: Pool, taps: &[f32]) -> f32 {
    match pool {
        Pool::Max => taps.iter().fold(f32::NEG_INFINITY, |m, &v| max_nan(m, v)),
        Pool::Average { .. } => taps.iter().sum(),
    }
}

/// The larger of `a` and `b`, NaN if either is.
#[inline]
fn max_nan(a: f32, b: f32) -> f32 {
    if b > a || b.is_nan() {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, in f64, window by window.
    fn reference(x: &[f32], [n, c, h, w]: [usize; 4], window: &Window, pool: Pool) -> Vec<f64> {
        let [ho, wo] = window.output_size([h, w]).unwrap();
        let [kh, kw] = window.kernel;
        let mut out = Vec::new();
        for plane in x.chunks(h * w).take(n * c) {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut taps = Vec::new();
                    for a in 0..kh {
                        for b in 0..kw {
                            let iy =
                                (oy * window.stride[0] + a) as isize - window.padding[0] as isize;
                            let ix =
                                (ox * window.stride[1] + b) as isize - window.padding[1] as isize;
                            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                taps.push(plane[iy as usize * w + ix as usize] as f64);
                            }
                        }
                    }
                    out.push(match pool {
                        Pool::Max if taps.iter().any(|v| v.is_nan()) => f64::NAN,
                        Pool::Max => taps.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                        Pool::Average { count_padding } => {
                            let count = if count_padding { kh * kw } else { taps.len() };
                            taps.iter().sum::<f64>() / count as f64
                        }
                    });
                }
            }
        }
        out
    }

    /// Inception's pools (3×3 stride 1 padding 1 averages without the padding; 3×3 stride 2
    /// and stride 1 padding 1 maxima), rectangular windows with unequal strides and padding,
    /// averages counting the padding, and an input large enough for the parallel path: equal
    /// to the definition; a NaN reaches exactly the maxima whose windows hold it.
    #[test]
    fn equals_the_definition() {
        let max = Pool::Max;
        let exclude = Pool::Average {
            count_padding: false,
        };
        let include = Pool::Average {
            count_padding: true,
        };
        let cases = [
            ([2, 3, 7, 6], [3, 3], [1, 1], [1, 1], exclude),
            ([2, 3, 7, 6], [3, 3], [1, 1], [1, 1], include),
            ([2, 3, 9, 8], [3, 3], [2, 2], [0, 0], max),
            ([1, 2, 5, 5], [3, 3], [1, 1], [1, 1], max),
            ([1, 2, 6, 9], [2, 3], [2, 1], [1, 1], exclude),
            ([1, 2, 6, 9], [2, 3], [1, 3], [1, 0], max),
            ([4, 16, 35, 35], [3, 3], [1, 1], [1, 1], exclude),
        ];
        for (dims, kernel, stride, padding, pool) in cases {
            let window = Window {
                kernel,
                stride,
                padding,
            };
            let [n, c, h, w] = dims;
            let x: Vec<f32> = (0..n * c * h * w)
                .map(|i| ((i as f32) * 0.618_034).sin() * 3.0)
                .collect();
            let ours = pool2d(&x, dims, &window, pool);
            let expected = reference(&x, dims, &window, pool);
            assert_eq!(ours.len(), expected.len(), "{window:?}");
            for (i, (&o, &e)) in ours.iter().zip(&expected).enumerate() {
                assert!(
                    (o as f64 - e).abs() < 1e-6 * (1.0 + e.abs()),
                    "{window:?} {pool:?} {i}: {o} {e}"
                );
            }
        }
        let window = Window {
            kernel: [3, 3],
            stride: [2, 2],
            padding: [1, 1],
        };
        let mut x = vec![0f32; 7 * 7];
        x[3 * 7 + 3] = f32::NAN;
        let ours = pool2d(&x, [1, 1, 7, 7], &window, Pool::Max);
        let expected = reference(&x, [1, 1, 7, 7], &window, Pool::Max);
        let nan = |v: &[f32]| v.iter().map(|v| v.is_nan()).collect::<Vec<_>>();
        assert_eq!(
            nan(&ours),
            expected.iter().map(|v| v.is_nan()).collect::<Vec<_>>()
        );
        assert_eq!(ours.iter().filter(|v| v.is_nan()).count(), 4);
    }

    #[test]
    fn windows_that_cannot_hold_input_have_no_output_size() {
        let window = |kernel, stride, padding| Window {
            kernel,
            stride,
            padding,
        };
        assert_eq!(
            window([3, 3], [1, 1], [1, 1]).output_size([5, 4]),
            Some([5, 4])
        );
        assert_eq!(
            window([3, 3], [2, 2], [0, 0]).output_size([8, 7]),
            Some([3, 3])
        );
        assert_eq!(window([3, 3], [1, 1], [2, 1]).output_size([5, 5]), None);
        assert_eq!(window([3, 3], [0, 1], [0, 0]).output_size([5, 5]), None);
        assert_eq!(window([4, 1], [1, 1], [0, 0]).output_size([3, 5]), None);
        assert_eq!(window([0, 1], [1, 1], [0, 0]).output_size([3, 5]), None);
    }
}
