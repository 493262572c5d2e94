//! Maximum mean discrepancy with a sum of RBF kernels.

use bench_models::Point;

/// Bandwidths for the toy's scale: component std 0.1 to spreads of order 1.
pub const DEFAULT_BANDWIDTHS: [f64; 4] = [0.05, 0.1, 0.2, 0.5];

fn kernel(a: Point, b: Point, inv_two_h2: &[f64]) -> f64 {
    let d2 = (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2);
    inv_two_h2.iter().map(|c| (-d2 * c).exp()).sum()
}

fn mean_within(x: &[Point], inv: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() {
        for j in i + 1..x.len() {
            s += kernel(x[i], x[j], inv);
        }
    }
    2.0 * s / (x.len() * (x.len() - 1)) as f64
}

/// The unbiased estimate of MMD² between the laws of `x` and `y` (can be slightly negative
/// when they are equal). Kernel: Σ_h exp(−‖a − b‖²/(2h²)).
pub fn mmd2_unbiased(x: &[Point], y: &[Point], bandwidths: &[f64]) -> f64 {
    assert!(
        x.len() > 1 && y.len() > 1,
        "MMD needs two samples on each side"
    );
    let inv: Vec<f64> = bandwidths.iter().map(|h| 1.0 / (2.0 * h * h)).collect();
    let mut cross = 0.0;
    for &a in x {
        for &b in y {
            cross += kernel(a, b, &inv);
        }
    }
    mean_within(x, &inv) + mean_within(y, &inv) - 2.0 * cross / (x.len() * y.len()) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use bench_models::GaussianMixture;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn mmd_separates_different_laws_and_not_equal_ones() {
        let mut rng = StdRng::seed_from_u64(1);
        let a = GaussianMixture::ring(8, 1.0, 0.1);
        let b = GaussianMixture::ring(4, 1.0, 0.1);
        let same = mmd2_unbiased(
            &a.sample(400, &mut rng),
            &a.sample(400, &mut rng),
            &DEFAULT_BANDWIDTHS,
        );
        let diff = mmd2_unbiased(
            &a.sample(400, &mut rng),
            &b.sample(400, &mut rng),
            &DEFAULT_BANDWIDTHS,
        );
        assert!(same.abs() < 0.01, "{same}");
        assert!(diff > 0.1, "{diff}");
    }
}
