//! First and second moments of 2-D laws: of samples, of weighted points (a tabulated density)
//! and of Gaussian mixtures in closed form.

use bench_models::{GaussianMixture, Point};

/// A mean and a covariance matrix.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Moments {
    pub mean: Point,
    pub cov: [[f64; 2]; 2],
}

impl Moments {
    /// Of points with weights (normalised here); the population covariance.
    pub fn of_weighted(points: &[(Point, f64)]) -> Self {
        let total: f64 = points.iter().map(|(_, w)| w).sum();
        let mut mean = [0.0; 2];
        for &(x, w) in points {
            mean[0] += w * x[0] / total;
            mean[1] += w * x[1] / total;
        }
        let mut cov = [[0.0; 2]; 2];
        for &(x, w) in points {
            let d = [x[0] - mean[0], x[1] - mean[1]];
            for (i, row) in cov.iter_mut().enumerate() {
                for (j, c) in row.iter_mut().enumerate() {
                    *c += w * d[i] * d[j] / total;
                }
            }
        }
        Self { mean, cov }
    }

    /// Of samples, each weighing the same.
    pub fn of_points(points: &[Point]) -> Self {
        let weighted: Vec<(Point, f64)> = points.iter().map(|&x| (x, 1.0)).collect();
        Self::of_weighted(&weighted)
    }

    /// Of a mixture of isotropic Gaussians: Σ w·μ, and Σ w·(σ²I + μμᵀ) − mean·meanᵀ.
    pub fn of_mixture(mixture: &GaussianMixture) -> Self {
        let c = mixture.components();
        let mut mean = [0.0; 2];
        for k in c {
            mean[0] += k.weight * k.mean[0];
            mean[1] += k.weight * k.mean[1];
        }
        let mut cov = [[0.0; 2]; 2];
        for k in c {
            for (i, row) in cov.iter_mut().enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    let var = if i == j { k.std * k.std } else { 0.0 };
                    *v += k.weight * (var + k.mean[i] * k.mean[j]);
                }
            }
        }
        for (i, row) in cov.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v -= mean[i] * mean[j];
            }
        }
        Self { mean, cov }
    }

    /// The total variance (trace of the covariance).
    pub fn spread(&self) -> f64 {
        self.cov[0][0] + self.cov[1][1]
    }

    /// ‖mean − other.mean‖.
    pub fn mean_distance(&self, other: &Self) -> f64 {
        (self.mean[0] - other.mean[0]).hypot(self.mean[1] - other.mean[1])
    }

    /// ‖cov − other.cov‖ (Frobenius).
    pub fn cov_distance(&self, other: &Self) -> f64 {
        let mut s = 0.0;
        for i in 0..2 {
            for j in 0..2 {
                s += (self.cov[i][j] - other.cov[i][j]).powi(2);
            }
        }
        s.sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bench_models::Component;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn a_mixtures_closed_form_moments_match_its_samples() {
        let mixture = GaussianMixture::new(vec![
            Component {
                mean: [1.0, 0.0],
                std: 0.2,
                weight: 0.7,
            },
            Component {
                mean: [-1.0, 2.0],
                std: 0.5,
                weight: 0.3,
            },
        ]);
        let exact = Moments::of_mixture(&mixture);
        // Mean 0.7·(1, 0) + 0.3·(−1, 2) = (0.4, 0.6); var x = 0.7·0.04 + 0.3·0.25 + E[x²] − 0.16.
        assert!((exact.mean[0] - 0.4).abs() < 1e-12 && (exact.mean[1] - 0.6).abs() < 1e-12);
        let var_x = 0.7 * 0.04 + 0.3 * 0.25 + (0.7 * 1.0 + 0.3 * 1.0) - 0.16;
        assert!((exact.cov[0][0] - var_x).abs() < 1e-12, "{exact:?}");
        let cov_xy = 0.3 * (-2.0) - 0.4 * 0.6;
        assert!((exact.cov[0][1] - cov_xy).abs() < 1e-12, "{exact:?}");
        let sampled = Moments::of_points(&mixture.sample(200_000, &mut StdRng::seed_from_u64(3)));
        assert!(sampled.mean_distance(&exact) < 0.01, "{sampled:?}");
        assert!(sampled.cov_distance(&exact) < 0.02, "{sampled:?}");
    }
}
