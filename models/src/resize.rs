//! Image resizing as the reward models' reference code does it, written as two matrix
//! products (`W_h · X · W_wᵀ`): exact to the reference's kernel, differentiable on any backend,
//! and the same code for both of the reference's algorithms.
//!
//! - [`Kernel::TorchBicubic`]: `torch.nn.functional.interpolate(mode="bicubic",
//!   align_corners=False)` without antialias — Keys' cubic with a = −0.75 at half-pixel
//!   centres, edge taps clamped to the border. ∇-GFlowNet's differentiable reward path.
//! - [`Kernel::PilBicubic`]: Pillow's `Image.resize(…, BICUBIC)` — a = −0.5, the kernel widened
//!   by the scale when shrinking (antialias), weights normalised per output pixel, taps
//!   outside the image dropped. CLIPImageProcessor's path; Pillow works on 8-bit images in
//!   fixed point and rounds after each pass, which [`pil_resize`] reproduces exactly.

use std::ops::Range;

use burn::tensor::{backend::Backend, Tensor, TensorData};

/// Which resampling to reproduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    TorchBicubic,
    PilBicubic,
    /// `interpolate(mode="bilinear", align_corners=False)` without antialias (pytorch-fid's
    /// resize to 299): half-pixel centres, negative source positions clamped to 0.
    TorchBilinear,
}

fn cubic(x: f64, a: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * a
    } else {
        0.0
    }
}

/// The `[out, input]` matrix taking a line of `input` samples to `out`.
pub fn resize_matrix(kernel: Kernel, input: usize, out: usize) -> Vec<f64> {
    resize_rows(kernel, input, out, 0..out)
}

/// The rows `keep` of [`resize_matrix`]: the outputs of a window of the resized line, at the
/// cost of the window (a centre crop of a very wide image needs 224 rows, not the whole width).
pub fn resize_rows(kernel: Kernel, input: usize, out: usize, keep: Range<usize>) -> Vec<f64> {
    let mut w = vec![0.0; keep.len() * input];
    let scale = input as f64 / out as f64;
    for (r, i) in keep.enumerate() {
        let row = &mut w[r * input..(r + 1) * input];
        match kernel {
            Kernel::TorchBicubic => {
                let src = (i as f64 + 0.5) * scale - 0.5;
                let base = src.floor();
                let t = src - base;
                for k in -1i64..=2 {
                    let j = (base as i64 + k).clamp(0, input as i64 - 1) as usize;
                    row[j] += cubic(t - k as f64, -0.75);
                }
            }
            Kernel::TorchBilinear => {
                let src = ((i as f64 + 0.5) * scale - 0.5).max(0.0);
                let x0 = (src.floor() as usize).min(input - 1);
                let x1 = (x0 + 1).min(input - 1);
                let t = src - x0 as f64;
                row[x0] += 1.0 - t;
                row[x1] += t;
            }
            Kernel::PilBicubic => {
                let filter_scale = scale.max(1.0);
                let support = 2.0 * filter_scale;
                // Pillow and torch's antialias multiply by the inverse scale.
                let inverse = 1.0 / filter_scale;
                let centre = (i as f64 + 0.5) * scale;
                let lo = ((centre - support + 0.5).floor().max(0.0)) as usize;
                let hi = ((centre + support + 0.5).floor() as usize).min(input);
                let mut total = 0.0;
                for (j, r) in row.iter_mut().enumerate().take(hi).skip(lo) {
                    *r = cubic((j as f64 - centre + 0.5) * inverse, -0.5);
                    total += *r;
                }
                if total != 0.0 {
                    row[lo..hi].iter_mut().for_each(|r| *r /= total);
                }
            }
        }
    }
    w
}

fn matrix<B: Backend>(w: Vec<f64>, rows: usize, cols: usize, device: &B::Device) -> Tensor<B, 2> {
    debug_assert_eq!(w.len(), rows * cols);
    let w: Vec<f32> = w.into_iter().map(|v| v as f32).collect();
    Tensor::from_data(TensorData::new(w, [rows, cols]), device)
}

/// Images `[N, C, H, W]` resized to `[N, C, out_h, out_w]` with `kernel`, in floating point
/// (differentiable).
pub fn resize<B: Backend>(images: Tensor<B, 4>, kernel: Kernel, out: [usize; 2]) -> Tensor<B, 4> {
    resize_window(images, kernel, out, [0..out[0], 0..out[1]])
}

/// The window `[rows, cols]` of [`resize`]'s output, computed alone.
pub fn resize_window<B: Backend>(
    images: Tensor<B, 4>,
    kernel: Kernel,
    [out_h, out_w]: [usize; 2],
    [rows, cols]: [Range<usize>; 2],
) -> Tensor<B, 4> {
    let [n, c, h, w] = images.dims();
    let (kh, kw) = (rows.len(), cols.len());
    let device = images.device();
    let ww = matrix::<B>(resize_rows(kernel, w, out_w, cols), kw, w, &device).transpose();
    let wh = matrix::<B>(resize_rows(kernel, h, out_h, rows), kh, h, &device);
    let across = images.reshape([n * c * h, w]).matmul(ww); // [N·C·H, kw]
    let across = across.reshape([n * c, h, kw]);
    wh.unsqueeze_dim::<3>(0)
        .expand([n * c, kh, h])
        .matmul(across)
        .reshape([n, c, kh, kw])
}

/// Pillow's 8-bit bicubic resize of images `[N, C, H, W]` holding levels 0–255: horizontal
/// pass, vertical pass, each in Pillow's fixed point (see [`pil_resize_window`]).
pub fn pil_resize<B: Backend>(images: Tensor<B, 4>, out: [usize; 2]) -> Tensor<B, 4> {
    pil_resize_window(images, out, [0..out[0], 0..out[1]])
}

/// Pillow's fractional bits of its 8-bit resampling coefficients (`PRECISION_BITS`).
const PRECISION_BITS: u32 = 22;

/// One output's taps in Pillow's fixed point: the first input it reads and its integer weights
/// (`normalize_coeffs_8bpc`: the normalised weight × 2²², rounded half away from zero).
struct FixedTaps {
    first: usize,
    weights: Vec<i64>,
}

fn fixed_taps(input: usize, out: usize, keep: Range<usize>) -> Vec<FixedTaps> {
    let dense = resize_rows(Kernel::PilBicubic, input, out, keep);
    dense
        .chunks(input.max(1))
        .map(|row| {
            let first = row.iter().position(|&w| w != 0.0).unwrap_or(0);
            let last = row.iter().rposition(|&w| w != 0.0).map_or(first, |l| l + 1);
            let weights = row[first..last]
                .iter()
                .map(|&w| {
                    let scaled = w * f64::from(1u32 << PRECISION_BITS);
                    // C's `(int)(±0.5 + x)`: truncation toward zero.
                    (if w < 0.0 { scaled - 0.5 } else { scaled + 0.5 }).trunc() as i64
                })
                .collect();
            FixedTaps { first, weights }
        })
        .collect()
}

/// Pillow's `clip8`: the rounded sum back to a level.
fn clip8(sum: i64) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// One pass along the last axis of `rows` lines of `len` levels: `taps` outputs per line.
fn resample_lines(lines: &[u8], len: usize, taps: &[FixedTaps]) -> Vec<u8> {
    let bias = 1i64 << (PRECISION_BITS - 1);
    lines
        .chunks(len)
        .flat_map(|line| {
            taps.iter().map(move |t| {
                let sum = t
                    .weights
                    .iter()
                    .zip(&line[t.first..])
                    .fold(bias, |s, (&w, &v)| s + w * i64::from(v));
                clip8(sum)
            })
        })
        .collect()
}

/// `[H, W]` planes transposed to `[W, H]`.
fn transpose_planes(planes: &[u8], h: usize, w: usize) -> Vec<u8> {
    let mut out = vec![0u8; planes.len()];
    for (p, plane) in planes.chunks(h * w).enumerate() {
        let dst = &mut out[p * h * w..(p + 1) * h * w];
        for y in 0..h {
            for x in 0..w {
                dst[x * h + y] = plane[y * w + x];
            }
        }
    }
    out
}

/// The window `[rows, cols]` of [`pil_resize`]'s output, computed alone (the same values: a
/// window's pixels read only their own kernel rows).
///
/// Pillow's algorithm exactly, on the host: coefficients as [`Kernel::PilBicubic`]'s,
/// quantised to 22 fractional bits; each pass sums in integers with a half-unit bias, shifts
/// and clips to 8 bits; a pass whose size does not change is skipped; the passes in Pillow
/// 13's order (vertical first when the height shrinks by more than twice as much as the width;
/// Pillow 12 and older always start with the horizontal pass, which differs only for such
/// images — in the processor paths, images more than twice as tall as wide). Floating-point passes
/// differ from it by one level where a sum falls next to a half. Values are rounded and
/// clamped to 0–255 first. Not differentiable (8-bit images have no gradient).
pub fn pil_resize_window<B: Backend>(
    images: Tensor<B, 4>,
    [out_h, out_w]: [usize; 2],
    [rows, cols]: [Range<usize>; 2],
) -> Tensor<B, 4> {
    let [n, c, h, w] = images.dims();
    let device = images.device();
    let levels: Vec<u8> = images
        .round()
        .clamp(0.0, 255.0)
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("f32 data")
        .into_iter()
        .map(|v| v as u8)
        .collect();
    let (kh, kw) = (rows.len(), cols.len());
    // Pillow 13 runs the vertical pass first when the height shrinks by more than twice as
    // much as the width (Pillow 12 and older always ran the horizontal one first).
    let shrink_h = h as i64 - out_h as i64;
    let vertical_first = shrink_h > 0 && shrink_h > (w as i64 - out_w as i64) * 2;
    // The horizontal pass runs along each row: [rows, w] → [rows, kw].
    let across = |planes: Vec<u8>| -> Vec<u8> {
        if out_w != w {
            resample_lines(&planes, w, &fixed_taps(w, out_w, cols.clone()))
        } else {
            planes
                .chunks(w)
                .flat_map(|line| line[cols.clone()].to_vec())
                .collect()
        }
    };
    // The vertical pass runs along the transposed planes: [H, width] → [kh, width].
    let down = |planes: Vec<u8>, width: usize| -> Vec<u8> {
        let t = transpose_planes(&planes, h, width);
        let resized = if out_h != h {
            resample_lines(&t, h, &fixed_taps(h, out_h, rows.clone()))
        } else {
            t.chunks(h)
                .flat_map(|line| line[rows.clone()].to_vec())
                .collect()
        };
        transpose_planes(&resized, width, kh)
    };
    let out = if vertical_first {
        across(down(levels, w))
    } else {
        down(across(levels), kw)
    };
    let values: Vec<f32> = out.into_iter().map(f32::from).collect();
    Tensor::from_data(TensorData::new(values, [n, c, kh, kw]), &device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sum_to_one_and_identity_sizes_are_identities() {
        for kernel in [
            Kernel::TorchBicubic,
            Kernel::PilBicubic,
            Kernel::TorchBilinear,
        ] {
            for (i, o) in [(52, 30), (30, 52), (7, 7), (1, 3)] {
                let w = resize_matrix(kernel, i, o);
                for r in w.chunks(i) {
                    assert!(
                        (r.iter().sum::<f64>() - 1.0).abs() < 1e-12,
                        "{kernel:?} {i}→{o}"
                    );
                }
                if i == o {
                    for (k, r) in w.chunks(i).enumerate() {
                        assert!((r[k] - 1.0).abs() < 1e-12);
                    }
                }
            }
        }
    }

    #[test]
    fn a_window_of_the_pil_resize_is_that_window_of_the_whole_resize() {
        use burn::backend::Flex;
        let device = Default::default();
        let values: Vec<f32> = (0..2 * 3 * 9 * 23)
            .map(|i| ((i * 37) % 256) as f32)
            .collect();
        let images = Tensor::<Flex, 4>::from_data(TensorData::new(values, [2, 3, 9, 23]), &device);
        for (out, rows, cols) in [
            ([7, 40], 1..6, 9..14),
            ([9, 11], 2..9, 0..11),
            ([12, 23], 3..7, 4..20),
        ] {
            let whole =
                pil_resize(images.clone(), out).slice([0..2, 0..3, rows.clone(), cols.clone()]);
            let window = pil_resize_window(images.clone(), out, [rows, cols]);
            let diff = (whole - window).abs().max().into_scalar();
            assert_eq!(diff, 0.0, "{out:?}");
        }
    }
}
