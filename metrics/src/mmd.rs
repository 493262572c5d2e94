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

/// The unbiased MMD² with each bandwidth's kernel on its own, in one pass over the pairs: which
/// scale two laws differ at (small bandwidths see clumps, large ones the spread). Their sum is
/// [`mmd2_unbiased`] with all of them, up to rounding (that one keeps its own summation order,
/// so that published tables stay identical to the last digit).
pub fn mmd2_unbiased_each(x: &[Point], y: &[Point], bandwidths: &[f64]) -> Vec<f64> {
    assert!(
        x.len() > 1 && y.len() > 1,
        "MMD needs two samples on each side"
    );
    let inv: Vec<f64> = bandwidths.iter().map(|h| 1.0 / (2.0 * h * h)).collect();
    let add = |sums: &mut [f64], a: Point, b: Point| {
        let d2 = (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2);
        for (s, c) in sums.iter_mut().zip(&inv) {
            *s += (-d2 * c).exp();
        }
    };
    let within = |z: &[Point]| {
        let mut sums = vec![0.0; inv.len()];
        for i in 0..z.len() {
            for j in i + 1..z.len() {
                add(&mut sums, z[i], z[j]);
            }
        }
        let pairs = (z.len() * (z.len() - 1)) as f64 / 2.0;
        sums.into_iter().map(|s| s / pairs).collect::<Vec<_>>()
    };
    let mut cross = vec![0.0; inv.len()];
    for &a in x {
        for &b in y {
            add(&mut cross, a, b);
        }
    }
    let (wx, wy) = (within(x), within(y));
    let n = (x.len() * y.len()) as f64;
    (0..inv.len())
        .map(|k| wx[k] + wy[k] - 2.0 * cross[k] / n)
        .collect()
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

    #[test]
    fn each_bandwidth_sums_to_the_joint_kernel_and_separates_on_its_own() {
        let mut rng = StdRng::seed_from_u64(2);
        let a = GaussianMixture::ring(8, 1.0, 0.1).sample(300, &mut rng);
        let b = GaussianMixture::ring(8, 1.0, 0.3).sample(300, &mut rng);
        let each = mmd2_unbiased_each(&a, &b, &DEFAULT_BANDWIDTHS);
        let joint = mmd2_unbiased(&a, &b, &DEFAULT_BANDWIDTHS);
        assert!(
            (each.iter().sum::<f64>() - joint).abs() < 1e-12,
            "{each:?} {joint}"
        );
        // Same ring, different mode widths: every bandwidth alone tells them apart, and none
        // tells a law from itself.
        assert!(each.iter().all(|&m| m > 0.005), "{each:?}");
        let c = GaussianMixture::ring(8, 1.0, 0.1).sample(300, &mut rng);
        let same = mmd2_unbiased_each(&a, &c, &DEFAULT_BANDWIDTHS);
        assert!(same.iter().all(|&m| m.abs() < 0.004), "{same:?}");
    }
}
