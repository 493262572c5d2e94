//! Group norm (optionally followed by SiLU) as one kernel, as PyTorch's `native_group_norm`.

use burn::tensor::TensorData;
use burn_flex::FlexTensor;
use multiversion::multiversion;
use rayon::prelude::*;

use super::PARALLEL_MIN;

use super::vector_math::{exp, silu_scalar};

/// The per-channel affine of a group norm: `γ` and `β`, each one value per channel.
pub(crate) struct Affine<'a> {
    pub gamma: &'a [f32],
    pub beta: &'a [f32],
}

/// Group norm of `x` (contiguous f32, `[N, C, …]`) over `groups` groups of channels, with
/// the biased variance and `eps` as torch's; then `γ·x̂ + β` per channel when `affine` is
/// given, then SiLU when `silu`.
///
/// The statistics are two passes in f64 (mean, then the mean squared deviation), which no
/// group's offset can cancel; the output pass computes `(x − m)·a + b` per channel with `m`
/// the mean in f32, `a = γ·rstd` and `b = β + (m − mean)·a`. (PyTorch's CPU kernel computes
/// `x·a + (β − mean·a)`, whose two terms cancel where the mean is large: 4e-6 off at mean 40.)
pub(crate) fn group_norm(
    x: FlexTensor,
    groups: usize,
    affine: Option<Affine<'_>>,
    eps: f64,
    silu: bool,
) -> FlexTensor {
    let shape = x.layout().shape().clone();
    let dims: Vec<usize> = shape.iter().copied().collect();
    let (n, channels) = (dims[0], dims[1]);
    let spatial: usize = dims[2..].iter().product();
    let per_group = channels / groups * spatial;
    if per_group == 0 {
        return x;
    }
    let input = x.as_slice::<f32>().expect("contiguous f32 (flex_f32)");
    let mut out = vec![0f32; input.len()];
    let unit = |(index, (src, dst)): (usize, (&[f32], &mut [f32]))| {
        let (mean, rstd) = moments(src, eps);
        let centre = mean as f32;
        let group = index % groups;
        let first_channel = group * (channels / groups);
        for (c, (src, dst)) in src.chunks(spatial).zip(dst.chunks_mut(spatial)).enumerate() {
            let (gamma, beta) = match &affine {
                Some(a) => (a.gamma[first_channel + c], a.beta[first_channel + c]),
                None => (1.0, 0.0),
            };
            let a = gamma as f64 * rstd;
            // The mean's f32 rounding folded into the shift, so `x − centre` (exact for x
            // near the mean) carries no error of it.
            let b = beta as f64 + (centre as f64 - mean) * a;
            scale_shift(src, dst, centre, a as f32, b as f32, silu);
        }
    };
    if input.len() < PARALLEL_MIN {
        input
            .chunks(per_group)
            .zip(out.chunks_mut(per_group))
            .enumerate()
            .for_each(unit);
    } else {
        input
            .par_chunks(per_group)
            .zip(out.par_chunks_mut(per_group))
            .enumerate()
            .for_each(unit);
    }
    debug_assert_eq!(input.len(), n * channels * spatial);
    FlexTensor::from_data(TensorData::new(out, dims))
}

/// What [`group_norm_backward`] returns: the gradients of the input, `γ` and `β`.
pub(crate) struct Gradients {
    pub x: Vec<f32>,
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

/// The gradients of [`group_norm`] (with its affine) given the output's gradient `dy`, from
/// the input `x` `[N, C, …]` (contiguous, `dims` its shape): with `û = (x − μ)·rstd`,
/// `u = γ·û + β` and `du = dy·silu′(u)` (or `dy` without SiLU),
/// `dβ = Σ du`, `dγ = Σ du·û` (over the batch and positions) and, per group of `M` elements,
/// `dx = rstd·(γ·du − mean(γ·du) − û·mean(γ·du·û))`. Statistics are recomputed (cheaper
/// than keeping them).
pub(crate) fn group_norm_backward(
    x: &[f32],
    dims: &[usize],
    groups: usize,
    affine: &Affine<'_>,
    eps: f64,
    silu: bool,
    dy: &[f32],
) -> Gradients {
    let channels = dims[1];
    let spatial: usize = dims[2..].iter().product();
    let per_channel_group = channels / groups;
    let per_group = per_channel_group * spatial;
    let mut dx = vec![0f32; x.len()];
    let mut gamma = vec![0f32; channels];
    let mut beta = vec![0f32; channels];
    if per_group == 0 {
        return Gradients { x: dx, gamma, beta };
    }
    // Per group: its channels' (Σ du, Σ du·û), then dx.
    let unit = |(index, ((src, dy), dx)): GroupSlices<'_>| {
        let (mean, rstd) = moments(src, eps);
        let centre = mean as f32;
        let shift = ((centre as f64 - mean) * rstd) as f32;
        let rstd = rstd as f32;
        let first_channel = (index % groups) * per_channel_group;
        let mut sums = Vec::with_capacity(per_channel_group);
        let (mut mean_dxhat, mut mean_dxhat_xhat) = (0f64, 0f64);
        for (c, ((src, dy), du)) in src
            .chunks(spatial)
            .zip(dy.chunks(spatial))
            .zip(dx.chunks_mut(spatial))
            .enumerate()
        {
            let channel = first_channel + c;
            let (g, b) = (affine.gamma[channel], affine.beta[channel]);
            let point = Point {
                centre,
                rstd,
                shift,
            };
            let (sum_du, sum_du_xhat) = upstream(src, dy, du, point, g, b, silu);
            mean_dxhat += g as f64 * sum_du as f64;
            mean_dxhat_xhat += g as f64 * sum_du_xhat as f64;
            sums.push((sum_du, sum_du_xhat));
        }
        let count = per_group as f64;
        let (c1, c2) = (
            (mean_dxhat / count) as f32,
            (mean_dxhat_xhat / count) as f32,
        );
        for (c, (src, d)) in src.chunks(spatial).zip(dx.chunks_mut(spatial)).enumerate() {
            let g = affine.gamma[first_channel + c];
            input_gradient(
                src,
                d,
                Point {
                    centre,
                    rstd,
                    shift,
                },
                g,
                c1,
                c2,
            );
        }
        (first_channel, sums)
    };
    let units: Vec<(usize, Vec<(f32, f32)>)> = if x.len() < PARALLEL_MIN {
        x.chunks(per_group)
            .zip(dy.chunks(per_group))
            .zip(dx.chunks_mut(per_group))
            .enumerate()
            .map(unit)
            .collect()
    } else {
        x.par_chunks(per_group)
            .zip(dy.par_chunks(per_group))
            .zip(dx.par_chunks_mut(per_group))
            .enumerate()
            .map(unit)
            .collect()
    };
    for (first_channel, sums) in units {
        for (c, (sum_du, sum_du_xhat)) in sums.into_iter().enumerate() {
            beta[first_channel + c] += sum_du;
            gamma[first_channel + c] += sum_du_xhat;
        }
    }
    Gradients { x: dx, gamma, beta }
}

/// A group's index and its input, output-gradient and input-gradient elements.
type GroupSlices<'a> = (usize, ((&'a [f32], &'a [f32]), &'a mut [f32]));

/// How a group's `x` maps to `û = (x − centre)·rstd + shift`.
#[derive(Clone, Copy)]
struct Point {
    centre: f32,
    rstd: f32,
    shift: f32,
}

/// `du = dy·silu′(γ·û + β)` (or `dy`) into `du`; returns `(Σ du, Σ du·û)`, summed in eight
/// lanes so that the loop vectorises.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn upstream(
    x: &[f32],
    dy: &[f32],
    du: &mut [f32],
    p: Point,
    gamma: f32,
    beta: f32,
    silu: bool,
) -> (f32, f32) {
    let element = |x: f32, dy: f32| {
        let xhat = (x - p.centre) * p.rstd + p.shift;
        let du = if silu {
            let u = xhat * gamma + beta;
            let s = 1.0 / (1.0 + exp(-u));
            dy * s * (1.0 + u * (1.0 - s))
        } else {
            dy
        };
        (du, xhat)
    };
    let (mut sum, mut weighted) = ([0f32; 8], [0f32; 8]);
    let n = x.len() / 8 * 8;
    for ((x, dy), du) in x[..n]
        .chunks_exact(8)
        .zip(dy[..n].chunks_exact(8))
        .zip(du[..n].chunks_exact_mut(8))
    {
        for j in 0..8 {
            let (d, xhat) = element(x[j], dy[j]);
            du[j] = d;
            sum[j] += d;
            weighted[j] += d * xhat;
        }
    }
    let (mut sum, mut weighted) = (sum.iter().sum::<f32>(), weighted.iter().sum::<f32>());
    for i in n..x.len() {
        let (d, xhat) = element(x[i], dy[i]);
        du[i] = d;
        sum += d;
        weighted += d * xhat;
    }
    (sum, weighted)
}

/// `dx = rstd·(γ·du − c1 − û·c2)`, in place over `du`.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn input_gradient(x: &[f32], du: &mut [f32], p: Point, gamma: f32, c1: f32, c2: f32) {
    for (&x, d) in x.iter().zip(du) {
        let xhat = (x - p.centre) * p.rstd + p.shift;
        *d = p.rstd * (gamma * *d - c1 - xhat * c2);
    }
}

/// Mean and 1/√(variance + eps) of one group, two passes in f64.
fn moments(xs: &[f32], eps: f64) -> (f64, f64) {
    let count = xs.len() as f64;
    let mean = lane_sum(xs, 0.0, false) / count;
    let var = lane_sum(xs, mean, true) / count;
    (mean, 1.0 / (var + eps).sqrt())
}

/// Σ (x − shift) (or Σ (x − shift)² when `squared`) in f64, in 8 independent lanes so that
/// it vectorises (a single running sum is a chain of dependent additions).
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn lane_sum(xs: &[f32], shift: f64, squared: bool) -> f64 {
    let term = |x: f32| {
        let d = x as f64 - shift;
        if squared {
            d * d
        } else {
            d
        }
    };
    let mut lanes = [0f64; 8];
    let chunks = xs.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().map(|&x| term(x)).sum();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += term(x);
        }
    }
    lanes.iter().sum::<f64>() + tail
}

/// `dst = (src − centre)·a + b`, then SiLU when `silu`.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn scale_shift(src: &[f32], dst: &mut [f32], centre: f32, a: f32, b: f32, silu: bool) {
    if silu {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = silu_scalar((s - centre) * a + b);
        }
    } else {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = (s - centre) * a + b;
        }
    }
}
