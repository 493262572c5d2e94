//! Branch-free f32 `exp` and `erf` that the compiler vectorises, and the elementwise SiLU and
//! GELU built on them, compiled for AVX-512, AVX2+FMA and NEON with a run-time choice
//! (`multiversion`).
//!
//! `exp` is Cephes' `expf` (range reduction by ln 2 split in two, a degree-6 polynomial, the
//! power of two built in the exponent bits): within 2 ulp of libm's over the range used here.
//! Its multiply-adds are fused (`mul_add`: one instruction in the AVX2/AVX-512/NEON builds,
//! 15–25 % off each kernel; a libm call in the plain x86-64 fallback, for CPUs without FMA).
//! `erf` is Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7), the formula of PyTorch's
//! vectorised CPU `erf`, which its exact GELU uses, with the Maclaurin series near 0.

use multiversion::multiversion;
use rayon::prelude::*;

use super::PARALLEL_MIN;

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

/// Arguments whose `exp` is a normal f32: below, [`exp`] returns 0; above, its clamped value
/// (Cephes' `MAXLOGF`) up to where e^x overflows, then infinity.
const EXP_MIN: f32 = -87.336_55;
const EXP_MAX: f32 = 88.376_26;
const EXP_OVERFLOW: f32 = 88.722_84;
/// 1.5·2²³: adding it rounds to an integer kept in the low mantissa bits.
const ROUND_MAGIC: f32 = 12_582_912.0;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// e^x, vectorisable (see the module doc). NaN stays NaN.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    let c = x.clamp(EXP_MIN, EXP_MAX);
    let shifted = c * std::f32::consts::LOG2_E + ROUND_MAGIC;
    let n = shifted - ROUND_MAGIC;
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, c));
    let mut p: f32 = 1.987_569_2e-4;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 0.5);
    let y = (p * r).mul_add(r, r + 1.0);
    let n_bits = shifted.to_bits().wrapping_sub(ROUND_MAGIC.to_bits());
    let scale = f32::from_bits(n_bits.wrapping_add(127) << 23);
    let e = y * scale;
    let e = if x < EXP_MIN { 0.0 } else { e };
    let e = if x > EXP_OVERFLOW { f32::INFINITY } else { e };
    if x.is_nan() {
        x
    } else {
        e
    }
}

/// erf(x), vectorisable: Abramowitz & Stegun 7.1.26 for |x| ≥ 1 and the Maclaurin series
/// below, where A&S's `1 − p·e^(−x²)` loses digits in f32 (5e-7 off at x = 0.035, 3.4e-7 at
/// 0.5).
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_7,
        -1.453_152,
        1.061_405_4,
    ];
    let a = x.abs();
    let t = 1.0 / (1.0 + P * a);
    let poly = ((((A[4] * t + A[3]) * t + A[2]) * t + A[1]) * t + A[0]) * t;
    let far = (1.0 - poly * exp(-a * a)).copysign(x);
    // 2/√π · Σ (−1)ⁿ x²ⁿ⁺¹ / (n!·(2n + 1)), n ≤ 9 (the next term is below 1.5e-8 for |x| < 1).
    let z = x * x;
    let mut series = -1.0 / 6_894_720.0;
    for c in [
        1.0 / 685_440.0,
        -1.0 / 75_600.0,
        1.0 / 9_360.0,
        -1.0 / 1_320.0,
        1.0 / 216.0,
        -1.0 / 42.0,
        0.1,
        -1.0 / 3.0,
        1.0,
    ] {
        series = series * z + c;
    }
    let near = x * std::f32::consts::FRAC_2_SQRT_PI * series;
    if a < 1.0 {
        near
    } else {
        far
    }
}

/// x·σ(x).
#[inline(always)]
pub(crate) fn silu_scalar(x: f32) -> f32 {
    x / (1.0 + exp(-x))
}

/// x·Φ(x), exact (erf-based) GELU.
#[inline(always)]
fn gelu_scalar(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// CLIP's QuickGELU's slope: `x·σ(1.702·x)`, OpenAI's sigmoid fit of GELU.
pub const QUICK_GELU_SLOPE: f32 = 1.702;

/// x·σ(1.702·x), with `1.702·x` rounded to f32 first, as PyTorch's `x * torch.sigmoid(1.702 * x)`.
#[inline(always)]
fn quick_gelu_scalar(x: f32) -> f32 {
    x / (1.0 + exp(-(QUICK_GELU_SLOPE * x)))
}

#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn silu_slice(xs: &mut [f32]) {
    for x in xs {
        *x = silu_scalar(*x);
    }
}

#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn gelu_slice(xs: &mut [f32]) {
    for x in xs {
        *x = gelu_scalar(*x);
    }
}

#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn quick_gelu_slice(xs: &mut [f32]) {
    for x in xs {
        *x = quick_gelu_scalar(*x);
    }
}

/// d silu(x)/dx · g = g·σ(x)·(1 + x·(1 − σ(x))).
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn silu_grad_slice(x: &[f32], g: &[f32], out: &mut [f32]) {
    for ((o, &x), &g) in out.iter_mut().zip(x).zip(g) {
        let s = 1.0 / (1.0 + exp(-x));
        *o = g * s * (1.0 + x * (1.0 - s));
    }
}

/// d quick_gelu(x)/dx · g = g·s·(1 + a·x·(1 − s)), s = σ(a·x), a = 1.702.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn quick_gelu_grad_slice(x: &[f32], g: &[f32], out: &mut [f32]) {
    for ((o, &x), &g) in out.iter_mut().zip(x).zip(g) {
        let ax = QUICK_GELU_SLOPE * x;
        let s = 1.0 / (1.0 + exp(-ax));
        *o = g * s * (1.0 + ax * (1.0 - s));
    }
}

/// d gelu(x)/dx · g = g·(Φ(x) + x·φ(x)), exact.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn gelu_grad_slice(x: &[f32], g: &[f32], out: &mut [f32]) {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    for ((o, &x), &g) in out.iter_mut().zip(x).zip(g) {
        let cdf = 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
        let pdf = INV_SQRT_2PI * exp(-0.5 * x * x);
        *o = g * (cdf + x * pdf);
    }
}

/// `kernel(x, g, out)` over aligned chunks of the three, in parallel when they are large.
fn for_chunks2(x: &[f32], g: &[f32], out: &mut [f32], kernel: fn(&[f32], &[f32], &mut [f32])) {
    if out.len() < PARALLEL_MIN {
        kernel(x, g, out);
    } else {
        out.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
            .for_each(|(out, (x, g))| kernel(x, g, out));
    }
}

/// SiLU's input gradient: `out = g · silu′(x)`.
pub(crate) fn silu_grad(x: &[f32], g: &[f32], out: &mut [f32]) {
    for_chunks2(x, g, out, silu_grad_slice);
}

/// Exact GELU's input gradient: `out = g · gelu′(x)`.
pub(crate) fn gelu_grad(x: &[f32], g: &[f32], out: &mut [f32]) {
    for_chunks2(x, g, out, gelu_grad_slice);
}

/// QuickGELU's input gradient: `out = g · quick_gelu′(x)`.
pub(crate) fn quick_gelu_grad(x: &[f32], g: &[f32], out: &mut [f32]) {
    for_chunks2(x, g, out, quick_gelu_grad_slice);
}

/// `kernel` over `xs`, in parallel chunks when `xs` is large.
pub(crate) fn for_chunks(xs: &mut [f32], kernel: fn(&mut [f32])) {
    if xs.len() < PARALLEL_MIN {
        kernel(xs);
    } else {
        xs.par_chunks_mut(CHUNK).for_each(kernel);
    }
}

/// SiLU of every element, in place.
pub(crate) fn silu(xs: &mut [f32]) {
    for_chunks(xs, silu_slice);
}

/// Exact GELU of every element, in place.
pub(crate) fn gelu(xs: &mut [f32]) {
    for_chunks(xs, gelu_slice);
}

/// CLIP's QuickGELU of every element, in place.
pub(crate) fn quick_gelu(xs: &mut [f32]) {
    for_chunks(xs, quick_gelu_slice);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dense sweep of the range where e^x is normal: within 2 ulp of libm's `expf`; 0
    /// below, infinity above, NaN through.
    #[test]
    fn exp_is_within_two_ulp_of_libm() {
        let ulps = |a: f32, b: f32| (a.to_bits() as i64 - b.to_bits() as i64).abs();
        let mut worst = 0;
        for i in -1_746_000..=1_767_000 {
            let x = i as f32 * 5e-5;
            let (ours, libm) = (exp(x), x.exp());
            worst = worst.max(ulps(ours, libm));
        }
        assert!(worst <= 2, "{worst} ulp");
        for x in [-87.3, -50.0, 0.0, 1e-30, -1e-30, 20.0, 88.3] {
            assert!(ulps(exp(x), x.exp()) <= 2, "exp({x})");
        }
        assert_eq!(exp(-88.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(89.0), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
    }

    /// Within 3e-7 of f64 erf (A&S's 1.5e-7 plus f32 rounding), odd, and ±1 far out.
    #[test]
    fn erf_is_within_its_bound() {
        let (mut worst, mut worst_x) = (0f64, 0f32);
        for i in -100_000..=100_000 {
            let x = i as f32 * 1e-4;
            let reference = erf_f64(x as f64);
            let error = (erf(x) as f64 - reference).abs();
            if error > worst {
                (worst, worst_x) = (error, x);
            }
            assert_eq!(erf(-x), -erf(x));
        }
        assert!(worst < 3e-7, "{worst} at {worst_x}");
        assert_eq!(erf(20.0), 1.0);
        assert_eq!(erf(f32::INFINITY), 1.0);
        assert!(erf(f32::NAN).is_nan());
    }

    /// The slice kernels (each target the CPU runs, serial and parallel) equal the scalar
    /// forms, which equal the definitions.
    #[test]
    fn slice_kernels_equal_the_definitions() {
        let xs: Vec<f32> = (0..(PARALLEL_MIN + 1234))
            .map(|i| (i as f32 * 0.618_034).sin() * 30.0)
            .collect();
        let mut s = xs.clone();
        silu(&mut s);
        let mut g = xs.clone();
        gelu(&mut g);
        let mut q = xs.clone();
        quick_gelu(&mut q);
        for (((&x, &s), &g), &q) in xs.iter().zip(&s).zip(&g).zip(&q) {
            let x64 = x as f64;
            // The slope's product rounded to f32, as PyTorch's `1.702 * x` is.
            let ax = (QUICK_GELU_SLOPE * x) as f64;
            let quick_ref = x64 / (1.0 + (-ax).exp());
            assert!(
                (q as f64 - quick_ref).abs() <= 2e-7 * (1.0 + quick_ref.abs()),
                "quick_gelu({x})"
            );
            let silu_ref = x64 / (1.0 + (-x64).exp());
            let gelu_ref = 0.5 * x64 * (1.0 + erf_f64(x64 / std::f64::consts::SQRT_2));
            assert!(
                (s as f64 - silu_ref).abs() <= 2e-7 * (1.0 + silu_ref.abs()),
                "silu({x})"
            );
            // erf's absolute error, times x/2, plus rounding.
            let gelu_bound = 1e-7 * x64.abs() + 3e-7 * gelu_ref.abs() + 1e-30;
            assert!((g as f64 - gelu_ref).abs() <= gelu_bound, "gelu({x})");
        }
    }

    /// The gradient kernels against central differences of the f64 functions.
    #[test]
    fn gradient_kernels_equal_the_derivatives() {
        let xs: Vec<f32> = (-800..=800).map(|i| i as f32 / 100.0).collect();
        let gs: Vec<f32> = xs.iter().map(|x| 1.0 + (x * 3.0).cos() * 0.5).collect();
        let silu64 = |x: f64| x / (1.0 + (-x).exp());
        let gelu64 = |x: f64| 0.5 * x * (1.0 + erf_f64(x / std::f64::consts::SQRT_2));
        let mut ds = vec![0f32; xs.len()];
        let quick64 = |x: f64| x / (1.0 + (-1.702 * x).exp());
        let mut dg = vec![0f32; xs.len()];
        let mut dq = vec![0f32; xs.len()];
        silu_grad(&xs, &gs, &mut ds);
        gelu_grad(&xs, &gs, &mut dg);
        quick_gelu_grad(&xs, &gs, &mut dq);
        let h = 1e-5;
        for (i, (&x, &g)) in xs.iter().zip(&gs).enumerate() {
            let x = x as f64;
            let derivative = |f: &dyn Fn(f64) -> f64| (f(x + h) - f(x - h)) / (2.0 * h);
            let silu_ref = g as f64 * derivative(&silu64);
            let gelu_ref = g as f64 * derivative(&gelu64);
            assert!(
                (ds[i] as f64 - silu_ref).abs() < 1e-6 * (1.0 + silu_ref.abs()),
                "silu′({x})"
            );
            assert!(
                (dg[i] as f64 - gelu_ref).abs() < 1e-6 * (1.0 + gelu_ref.abs()),
                "gelu′({x})"
            );
            let quick_ref = g as f64 * derivative(&quick64);
            assert!(
                (dq[i] as f64 - quick_ref).abs() < 1e-6 * (1.0 + quick_ref.abs()),
                "quick_gelu′({x})"
            );
        }
    }

    /// erf in f64 by its Maclaurin series near 0 and its continued fraction far out; accurate
    /// to ~1e-13 (the reference for the f32 kernels).
    fn erf_f64(x: f64) -> f64 {
        let a = x.abs();
        let value = if a < 3.0 {
            let (mut term, mut sum, mut n) = (a, a, 0.0);
            while term.abs() > 1e-17 * sum.abs() {
                n += 1.0;
                term *= -a * a / n;
                sum += term / (2.0 * n + 1.0);
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            // erfc(a) = e^(−a²)/√π · 1/(a + 1/2/(a + 1/(a + 3/2/(a + …))))
            let mut frac = a;
            for k in (1..60).rev() {
                frac = a + (k as f64 / 2.0) / frac;
            }
            1.0 - (-a * a).exp() / (std::f64::consts::PI.sqrt() * frac)
        };
        value.copysign(x)
    }
}
