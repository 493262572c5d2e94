//! 2-D convolution (one group, no dilation) as one matrix product per image: the image's
//! patches gathered into columns (`im2col`, `[C·kh·kw, Ho·Wo]`), multiplied by the kernel
//! `[Cout, C·kh·kw]` into the output `[Cout, Ho·Wo]`, the bias its starting value.
//!
//! burn-flex 0.21's convolution at the UNet's shapes costs 2–3× PyTorch's (its general path
//! tiles im2col over 3-D volumes), and its input gradient is a `conv_transpose2d` whose col2im
//! adds one element at a time through a function pointer. At stride 1 the input gradient is
//! itself a convolution, of the output gradient with the kernel flipped and its channel axes
//! swapped, padded by `k − 1 − p`: the same kernel here serves both.

use rayon::prelude::*;

use super::matrix_product::{product, Matrix, Par};

/// A convolution: kernel `kernel` `[Cout, C, kh, kw]`, `stride` and zero `padding` per axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Conv {
    pub channels_out: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl Conv {
    /// The output's spatial size for an input of `[h, w]`; `None` where the kernel does not
    /// fit in the padded input or a stride is 0.
    pub fn output_size(&self, [h, w]: [usize; 2]) -> Option<[usize; 2]> {
        let out = |size: usize, axis: usize| {
            let padded = size + 2 * self.padding[axis];
            let (k, s) = (self.kernel[axis], self.stride[axis]);
            (s > 0 && k > 0 && padded >= k).then(|| (padded - k) / s + 1)
        };
        Some([out(h, 0)?, out(w, 1)?])
    }

    /// The convolution that gives this one's input gradient from its output gradient, and its
    /// kernel: stride 1 only, and `padding ≤ kernel − 1` (else `None`).
    pub fn input_gradient(&self, channels_in: usize, weight: &[f32]) -> Option<(Conv, Vec<f32>)> {
        let fits = self.stride == [1, 1] && (0..2).all(|a| self.padding[a] < self.kernel[a]);
        if !fits {
            return None;
        }
        let [kh, kw] = self.kernel;
        let co = self.channels_out;
        // flipped[ci][co][a][b] = weight[co][ci][kh−1−a][kw−1−b]
        let mut flipped = vec![0f32; weight.len()];
        for o in 0..co {
            for i in 0..channels_in {
                for a in 0..kh {
                    for b in 0..kw {
                        let from = ((o * channels_in + i) * kh + (kh - 1 - a)) * kw + (kw - 1 - b);
                        flipped[((i * co + o) * kh + a) * kw + b] = weight[from];
                    }
                }
            }
        }
        let conv = Conv {
            channels_out: channels_in,
            kernel: self.kernel,
            stride: [1, 1],
            padding: [kh - 1 - self.padding[0], kw - 1 - self.padding[1]],
        };
        Some((conv, flipped))
    }
}

/// Most floats of gathered patches per tile (16 MiB); a few hundred in the unit tests, so
/// that they cover tiles of one row and ragged last tiles.
#[cfg(not(test))]
const COLUMNS_MAX: usize = 1 << 22;
#[cfg(test)]
const COLUMNS_MAX: usize = 1 << 9;

/// Below this many multiply-adds the images run on the calling thread.
const PARALLEL_MIN_MACS: usize = 1 << 20;

/// Below this many multiply-adds per image, one image's product is not split over threads.
const SPREAD_MIN_MACS: usize = 1 << 24;

/// `x` `[n, c, h, w]` (row-major) convolved with `weight` `[Cout, c, kh, kw]`, plus `bias`
/// `[Cout]`: `[n, Cout, Ho, Wo]` row-major. The caller checks the shapes
/// ([`Conv::output_size`] is `Some`).
pub(crate) fn conv2d(
    x: &[f32],
    [n, c, h, w]: [usize; 4],
    weight: &[f32],
    bias: Option<&[f32]>,
    conv: &Conv,
) -> Vec<f32> {
    let [ho, wo] = conv.output_size([h, w]).expect("checked by the caller");
    let co = conv.channels_out;
    let patch = c * conv.kernel[0] * conv.kernel[1];
    assert_eq!(x.len(), n * c * h * w, "input");
    assert_eq!(weight.len(), co * patch, "kernel");
    let mut out = vec![0f32; n * co * ho * wo];
    if out.is_empty() {
        return out;
    }
    let pointwise = conv.kernel == [1, 1] && conv.stride == [1, 1] && conv.padding == [0, 0];
    // Output rows per gathered tile: the columns stay within COLUMNS_MAX floats (a 512² VAE
    // layer's whole im2col would be 1.2 GB per image).
    let tile = (COLUMNS_MAX / (patch * wo).max(1)).clamp(1, ho);
    let image = |(item, out): (usize, &mut [f32]), scratch: &mut Scratch, threads| {
        let x = &x[item * c * h * w..][..c * h * w];
        if let Some(bias) = bias {
            for (row, &b) in out.chunks_mut(ho * wo).zip(bias) {
                row.fill(b);
            }
        }
        let lhs = Matrix::rows(weight.as_ptr(), patch);
        // Output rows first_row.. (width columns of each channel) ← kernel · `rhs`.
        let mut multiply = |first_row: usize, width: usize, rhs: Matrix| {
            let dst = out[first_row * wo..].as_mut_ptr();
            let accumulate = bias.is_some();
            // SAFETY: `out` holds co rows of ho·wo, of which columns first_row·wo.. + width
            // are written; `weight` holds co rows of `patch`; `rhs` `patch` rows of `width`:
            // `x`'s channels (h·w apart; pointwise, h = ho and w = wo) or the gathered columns.
            unsafe {
                product(
                    [co, width, patch],
                    dst,
                    ho * wo,
                    accumulate,
                    lhs,
                    rhs,
                    1.0,
                    threads,
                )
            }
        };
        if pointwise {
            multiply(0, ho * wo, Matrix::rows(x.as_ptr(), h * w));
            return;
        }
        for y0 in (0..ho).step_by(tile) {
            let rows = y0..(y0 + tile).min(ho);
            let width = rows.len() * wo;
            im2col(x, [c, h, w], conv, rows, wo, scratch);
            multiply(y0, width, Matrix::rows(scratch.columns.as_ptr(), width));
        }
    };
    let macs = n * co * ho * wo * patch;
    let parallel_images = macs >= PARALLEL_MIN_MACS && n >= rayon::current_num_threads();
    if parallel_images {
        out.par_chunks_mut(co * ho * wo)
            .enumerate()
            .for_each_init(Scratch::default, |scratch, item| {
                image(item, scratch, Par::Seq)
            });
    } else {
        // Fewer images than threads: each image's product spread over them where it is large
        // enough (a one-image tiny-UNet convolution takes 1.5× as long spread over two threads
        // as on one).
        let threads = match macs / n.max(1) >= SPREAD_MIN_MACS {
            true => Par::rayon(0),
            false => Par::Seq,
        };
        let mut scratch = Scratch::default();
        for item in out.chunks_mut(co * ho * wo).enumerate() {
            image(item, &mut scratch, threads);
        }
    }
    out
}

/// One task's scratch: the zero-padded input rows a tile reads (`band`) and its gathered
/// patches (`columns`), kept between tiles and images so that they are allocated once.
#[derive(Default)]
struct Scratch {
    band: Vec<f32>,
    columns: Vec<f32>,
}

/// The patches of one image's output rows `rows` as columns:
/// `columns[(ci·kh + a)·kw + b][(oy − rows.start)·wo + ox] = x[ci][oy·sh − ph + a][ox·sw − pw + b]`,
/// 0 outside the image.
///
/// The input rows the tile reads are first copied once into `band` with their zero border,
/// so that every patch row is a plain strided read: gathering straight from the image spent
/// most of its time on the per-row border arithmetic (a division per tap) and on calls copying
/// a few floats (a tiny-UNet row is 4–8 wide).
fn im2col(
    x: &[f32],
    [c, h, w]: [usize; 3],
    conv: &Conv,
    rows: std::ops::Range<usize>,
    wo: usize,
    scratch: &mut Scratch,
) {
    let [kh, kw] = conv.kernel;
    let [sh, sw] = conv.stride;
    let [ph, pw] = conv.padding;
    let wp = w + 2 * pw;
    let band_rows = (rows.len() - 1) * sh + kh;
    // Band row r holds input row rows.start·sh − ph + r (zeros outside the image).
    let top = rows.start * sh;
    let Scratch { band, columns } = scratch;
    // Zeroed in one pass, then the image's rows copied in (a fill per border was a `memset`
    // call per row).
    band.clear();
    band.resize(c * band_rows * wp, 0.0);
    for (channel, band) in x
        .chunks_exact(h * w)
        .zip(band.chunks_exact_mut(band_rows * wp))
    {
        for (r, line) in band.chunks_exact_mut(wp).enumerate() {
            let iy = (top + r).wrapping_sub(ph);
            if iy < h {
                copy_run(&mut line[pw..pw + w], &channel[iy * w..][..w]);
            }
        }
    }
    let width = rows.len() * wo;
    columns.resize(c * kh * kw * width, 0.0);
    let mut patch_rows = columns.chunks_exact_mut(width);
    for band in band.chunks_exact(band_rows * wp) {
        for a in 0..kh {
            for b in 0..kw {
                let row = patch_rows.next().expect("c·kh·kw rows");
                // Output column ox reads band column ox·sw + b ≤ (wo − 1)·sw + kw − 1 < wp.
                for (r, out) in row.chunks_exact_mut(wo).enumerate() {
                    let line = &band[(r * sh + a) * wp + b..];
                    if sw == 1 {
                        copy_run(out, &line[..wo]);
                    } else {
                        for (o, &v) in out.iter_mut().zip(line.iter().step_by(sw)) {
                            *o = v;
                        }
                    }
                }
            }
        }
    }
}

/// `dst ← src` (equal lengths) for the short runs of an image row: eight and then four floats
/// at a time in registers rather than a `memcpy` call per run (a tiny-UNet row is 4–8 wide).
#[inline(always)]
fn copy_run(dst: &mut [f32], src: &[f32]) {
    debug_assert_eq!(dst.len(), src.len());
    let (dst8, dst) = dst.as_chunks_mut::<8>();
    let (src8, src) = src.as_chunks::<8>();
    for (d, s) in dst8.iter_mut().zip(src8) {
        *d = *s;
    }
    let (dst4, dst) = dst.as_chunks_mut::<4>();
    let (src4, src) = src.as_chunks::<4>();
    for (d, s) in dst4.iter_mut().zip(src4) {
        *d = *s;
    }
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, in f64: `y[i][o][oy][ox] = bias[o] + Σ x[i][c][oy·s − p + a][ox·s − p
    /// + b] · w[o][c][a][b]` over the taps inside the image.
    fn reference(
        x: &[f32],
        [n, c, h, w]: [usize; 4],
        weight: &[f32],
        bias: &[f32],
        conv: &Conv,
    ) -> Vec<f64> {
        let [ho, wo] = conv.output_size([h, w]).unwrap();
        let [kh, kw] = conv.kernel;
        let co = conv.channels_out;
        let mut y = vec![0f64; n * co * ho * wo];
        for i in 0..n {
            for o in 0..co {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let mut sum = bias[o] as f64;
                        for ci in 0..c {
                            for a in 0..kh {
                                for b in 0..kw {
                                    let iy = (oy * conv.stride[0] + a) as isize
                                        - conv.padding[0] as isize;
                                    let ix = (ox * conv.stride[1] + b) as isize
                                        - conv.padding[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                        continue;
                                    }
                                    let xv = x[((i * c + ci) * h + iy as usize) * w + ix as usize];
                                    let wv = weight[((o * c + ci) * kh + a) * kw + b];
                                    sum += xv as f64 * wv as f64;
                                }
                            }
                        }
                        y[((i * co + o) * ho + oy) * wo + ox] = sum;
                    }
                }
            }
        }
        y
    }

    fn wave(len: usize, seed: f32) -> Vec<f32> {
        (0..len)
            .map(|i| ((i as f32 + seed) * 0.618_034).sin())
            .collect()
    }

    /// 3×3 same-size, 1×1, strided (the UNet's downsampling; in one tile and in five),
    /// rectangular kernels with unequal padding, a kernel larger than the padded border lets it slide over, and enough work for
    /// each parallel path: equal to the definition.
    #[test]
    fn equals_the_definition() {
        let cases = [
            ([2, 3, 5, 6], 4, [3, 3], [1, 1], [1, 1]),
            ([3, 5, 4, 4], 2, [1, 1], [1, 1], [0, 0]),
            ([2, 3, 7, 6], 4, [3, 3], [2, 2], [1, 1]),
            ([1, 4, 17, 9], 3, [3, 3], [2, 2], [1, 1]),
            ([1, 2, 6, 9], 3, [3, 1], [1, 2], [0, 2]),
            ([2, 2, 3, 3], 1, [5, 5], [1, 1], [1, 1]),
            ([4, 32, 8, 8], 32, [3, 3], [1, 1], [1, 1]),
            ([1, 32, 16, 16], 16, [3, 3], [1, 1], [1, 1]),
        ];
        for (dims, co, kernel, stride, padding) in cases {
            let conv = Conv {
                channels_out: co,
                kernel,
                stride,
                padding,
            };
            let [n, c, h, w] = dims;
            if conv.output_size([h, w]).is_none() {
                continue;
            }
            let x = wave(n * c * h * w, 0.5);
            let weight = wave(co * c * kernel[0] * kernel[1], 1.5);
            let bias = wave(co, 2.5);
            let ours = conv2d(&x, dims, &weight, Some(&bias), &conv);
            let expected = reference(&x, dims, &weight, &bias, &conv);
            assert_eq!(ours.len(), expected.len());
            for (i, (&o, &e)) in ours.iter().zip(&expected).enumerate() {
                assert!(
                    (o as f64 - e).abs() < 1e-5 * (1.0 + e.abs()),
                    "{conv:?} {dims:?} {i}: {o} {e}"
                );
            }
        }
    }

    /// The input gradient by the flipped convolution equals the adjoint of the convolution:
    /// `⟨conv(x), g⟩ = ⟨x, conv′(g)⟩` for every x and g, checked on random pairs.
    #[test]
    fn flipped_kernel_gives_the_adjoint() {
        for (padding, kernel) in [
            ([1, 1], [3, 3]),
            ([0, 0], [1, 1]),
            ([0, 1], [3, 3]),
            ([2, 1], [3, 2]),
        ] {
            let (n, c, co, h, w) = (2, 3, 4, 6, 5);
            let conv = Conv {
                channels_out: co,
                kernel,
                stride: [1, 1],
                padding,
            };
            let [ho, wo] = conv.output_size([h, w]).unwrap();
            let weight = wave(co * c * kernel[0] * kernel[1], 0.25);
            let x = wave(n * c * h * w, 3.0);
            let g = wave(n * co * ho * wo, 7.0);
            let y = conv2d(&x, [n, c, h, w], &weight, None, &conv);
            let (back, flipped) = conv.input_gradient(c, &weight).expect("stride 1");
            let dx = conv2d(&g, [n, co, ho, wo], &flipped, None, &back);
            assert_eq!(dx.len(), x.len(), "{padding:?} {kernel:?}");
            let dot = |a: &[f32], b: &[f32]| {
                a.iter()
                    .zip(b)
                    .map(|(&a, &b)| a as f64 * b as f64)
                    .sum::<f64>()
            };
            let (lhs, rhs) = (dot(&y, &g), dot(&x, &dx));
            assert!(
                (lhs - rhs).abs() < 1e-4 * (1.0 + lhs.abs()),
                "{padding:?} {kernel:?}: {lhs} {rhs}"
            );
        }
        let strided = Conv {
            channels_out: 1,
            kernel: [3, 3],
            stride: [2, 2],
            padding: [1, 1],
        };
        assert!(strided.input_gradient(1, &[0.0; 9]).is_none());
    }
}
