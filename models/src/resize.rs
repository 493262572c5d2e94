//! Image resizing as the reward models' reference code does it, written as two matrix
//! products (`W_h · X · W_wᵀ`): exact to the reference's kernel, differentiable on any backend,
//! and the same code for both of the reference's algorithms.
//!
//! - [`Kernel::TorchBicubic`]: `torch.nn.functional.interpolate(mode="bicubic",
//!   align_corners=False)` without antialias — Keys' cubic with a = −0.75 at half-pixel
//!   centres, edge taps clamped to the border. ∇-GFlowNet's differentiable reward path.
//! - [`Kernel::PilBicubic`]: Pillow's `Image.resize(…, BICUBIC)` — a = −0.5, the kernel widened
//!   by the scale when shrinking (antialias), weights normalised per output pixel, taps
//!   outside the image dropped. CLIPImageProcessor's path; Pillow works on 8-bit images and
//!   rounds after each pass, which [`pil_resize`] reproduces.

use burn::tensor::{backend::Backend, Tensor, TensorData};

/// Which resampling to reproduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    TorchBicubic,
    PilBicubic,
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
    let mut w = vec![0.0; out * input];
    let scale = input as f64 / out as f64;
    for i in 0..out {
        let row = &mut w[i * input..(i + 1) * input];
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
            Kernel::PilBicubic => {
                let filter_scale = scale.max(1.0);
                let support = 2.0 * filter_scale;
                let centre = (i as f64 + 0.5) * scale;
                let lo = ((centre - support + 0.5).floor().max(0.0)) as usize;
                let hi = ((centre + support + 0.5).floor() as usize).min(input);
                let mut total = 0.0;
                for (j, r) in row.iter_mut().enumerate().take(hi).skip(lo) {
                    *r = cubic((j as f64 - centre + 0.5) / filter_scale, -0.5);
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
    let w: Vec<f32> = w.into_iter().map(|v| v as f32).collect();
    Tensor::from_data(TensorData::new(w, [rows, cols]), device)
}

/// Images `[N, C, H, W]` resized to `[N, C, out_h, out_w]` with `kernel`, in floating point
/// (differentiable).
pub fn resize<B: Backend>(
    images: Tensor<B, 4>,
    kernel: Kernel,
    [out_h, out_w]: [usize; 2],
) -> Tensor<B, 4> {
    let [n, c, h, w] = images.dims();
    let device = images.device();
    let ww = matrix::<B>(resize_matrix(kernel, w, out_w), out_w, w, &device).transpose();
    let wh = matrix::<B>(resize_matrix(kernel, h, out_h), out_h, h, &device);
    let rows = images.reshape([n * c * h, w]).matmul(ww); // [N·C·H, out_w]
    let cols = rows.reshape([n * c, h, out_w]);
    wh.unsqueeze_dim::<3>(0)
        .expand([n * c, out_h, h])
        .matmul(cols)
        .reshape([n, c, out_h, out_w])
}

/// Pillow's 8-bit bicubic resize of images `[N, C, H, W]` holding levels 0–255: horizontal
/// pass, rounding to 8 bits, vertical pass, rounding again (Pillow skips a pass whose size
/// does not change).
pub fn pil_resize<B: Backend>(images: Tensor<B, 4>, [out_h, out_w]: [usize; 2]) -> Tensor<B, 4> {
    let [_, _, h, w] = images.dims();
    let levels = |t: Tensor<B, 4>| t.round().clamp(0.0, 255.0);
    let mut x = images;
    if out_w != w {
        x = levels(resize(x, Kernel::PilBicubic, [h, out_w]));
    }
    if out_h != h {
        x = levels(resize(x, Kernel::PilBicubic, [out_h, out_w]));
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sum_to_one_and_identity_sizes_are_identities() {
        for kernel in [Kernel::TorchBicubic, Kernel::PilBicubic] {
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
}
