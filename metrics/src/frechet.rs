//! The Fréchet distance between Gaussians fitted to two feature sets (FID and its variants):
//! `‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2·tr √(Σ₁Σ₂)`, in f64.
//!
//! `tr √(Σ₁Σ₂)` is computed as `Σᵢ √λᵢ` over the eigenvalues of the symmetric `Σ₁^½ Σ₂ Σ₁^½`
//! (similar to Σ₁Σ₂, so with the same spectrum), `Σ₁^½` from the symmetric eigendecomposition
//! of Σ₁ (faer's self-adjoint solver); in both, eigenvalues at or below numpy's rank tolerance
//! (`d · ε · λ_max`) count as 0. pytorch-fid takes scipy's `sqrtm` of the non-symmetric product
//! Σ₁Σ₂ instead: when the covariances are singular — always when there are fewer samples than
//! dimensions, as in per-prompt FID — that Schur route leaves complex parts (pytorch-fid keeps
//! the real part when the diagonal's imaginary parts are below 1e-3, and raises otherwise), and
//! each numerically-zero eigenvalue adds the square root of its round-off (≈ 1e-8) to the trace.
//! The eigenvalues of a product of two positive semi-definite matrices are real and
//! non-negative, so the symmetric route computes the same quantity without leaving the reals,
//! and the rank tolerance removes the round-off: on fixtures/frechet's N < d case it equals the
//! same route in 40-digit arithmetic to 16 digits, where pytorch-fid is 2e-8 (relative) away
//! (its `sqrtm` left imaginary parts of 8e-9); with N > d both agree to 1e-13.

use faer::{Mat, Side};

/// A Gaussian fitted to features: their mean and covariance.
#[derive(Debug, Clone, PartialEq)]
pub struct Gaussian {
    pub mean: Vec<f64>,
    /// `d × d`, row-major.
    pub covariance: Vec<f64>,
}

impl Gaussian {
    /// The mean and covariance (normalised by N − 1, as `np.cov(rowvar=False)`) of `n` feature
    /// rows of width `d`, row-major.
    ///
    /// # Errors
    /// Fewer than two rows, or a length that is not `n · d`.
    pub fn fit(features: &[f64], n: usize, d: usize) -> Result<Self, String> {
        if n < 2 {
            return Err(format!(
                "a covariance needs at least 2 feature vectors, got {n}"
            ));
        }
        if features.len() != n * d {
            return Err(format!(
                "{} values are not {n} feature vectors of {d}",
                features.len()
            ));
        }
        let rows = Mat::from_fn(n, d, |i, j| features[i * d + j]);
        let mean: Vec<f64> = (0..d)
            .map(|j| (0..n).map(|i| rows[(i, j)]).sum::<f64>() / n as f64)
            .collect();
        let centred = Mat::from_fn(n, d, |i, j| rows[(i, j)] - mean[j]);
        let scatter = centred.transpose() * &centred;
        let scale = 1.0 / (n - 1) as f64;
        let covariance = (0..d * d)
            .map(|k| scatter[(k / d, k % d)] * scale)
            .collect();
        Ok(Self { mean, covariance })
    }

    /// The feature width.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    fn matrix(&self) -> Mat<f64> {
        let d = self.dim();
        Mat::from_fn(d, d, |i, j| self.covariance[i * d + j])
    }

    fn check(&self, what: &str) -> Result<(), String> {
        let d = self.dim();
        if self.covariance.len() != d * d {
            return Err(format!(
                "{what}: a covariance of {} values for a mean of {d}",
                self.covariance.len()
            ));
        }
        if self
            .mean
            .iter()
            .chain(&self.covariance)
            .any(|v| !v.is_finite())
        {
            return Err(format!(
                "{what}: the statistics hold NaN or infinite values"
            ));
        }
        Ok(())
    }
}

/// Eigenvalues at or below numpy's rank tolerance (`d · ε · λ_max`) set to 0: they are
/// round-off of zero eigenvalues, and their square roots (≈ 1e-8 each) would add up in a trace.
fn rank_revealing(eigenvalues: &mut [f64]) {
    let top = eigenvalues.iter().copied().fold(0.0, f64::max);
    let tolerance = eigenvalues.len() as f64 * f64::EPSILON * top;
    eigenvalues
        .iter_mut()
        .filter(|l| **l <= tolerance)
        .for_each(|l| *l = 0.0);
}

/// `√A` of a symmetric positive semi-definite `A`.
fn psd_sqrt(a: &Mat<f64>) -> Result<Mat<f64>, String> {
    let eigen = a
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| format!("eigendecomposition failed: {e:?}"))?;
    let (u, s) = (eigen.U(), eigen.S());
    let d = a.nrows();
    let mut eigenvalues: Vec<f64> = (0..d).map(|k| s[k]).collect();
    rank_revealing(&mut eigenvalues);
    let roots: Vec<f64> = eigenvalues.iter().map(|l| l.sqrt()).collect();
    let scaled = Mat::from_fn(d, d, |i, k| u[(i, k)] * roots[k]);
    Ok(&scaled * u.transpose())
}

/// The Fréchet distance between `a` and `b`.
///
/// # Errors
/// Statistics of different widths, malformed or non-finite ones, or an eigendecomposition
/// that does not converge.
pub fn frechet_distance(a: &Gaussian, b: &Gaussian) -> Result<f64, String> {
    a.check("first statistics")?;
    b.check("second statistics")?;
    let d = a.dim();
    if b.dim() != d {
        return Err(format!("features of different widths: {d} and {}", b.dim()));
    }
    let mean_term: f64 = a
        .mean
        .iter()
        .zip(&b.mean)
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    let trace = |g: &Gaussian| (0..d).map(|i| g.covariance[i * d + i]).sum::<f64>();
    let root = psd_sqrt(&a.matrix())?;
    let product = &root * b.matrix() * &root;
    let symmetric = Mat::from_fn(d, d, |i, j| 0.5 * (product[(i, j)] + product[(j, i)]));
    let mut eigenvalues = symmetric
        .self_adjoint_eigenvalues(Side::Lower)
        .map_err(|e| format!("eigendecomposition failed: {e:?}"))?;
    rank_revealing(&mut eigenvalues);
    let trace_sqrt: f64 = eigenvalues.iter().map(|l| l.sqrt()).sum();
    Ok(mean_term + trace(a) + trace(b) - 2.0 * trace_sqrt)
}

/// The Fréchet distance between Gaussians fitted to two feature sets, `na` and `nb` rows of
/// width `d`, row-major: [`frechet_distance`] of the two fits, or, when there are fewer rows
/// than dimensions (per-prompt FID: 64 images against 2048 features), the same quantity from
/// the rows themselves.
///
/// With centred rows `A` (`na × d`) and `B`, `Σa = AᵀA/(na−1)` and `Σb = BᵀB/(nb−1)`; the non-zero
/// eigenvalues of `Σa·Σb = Aᵀ(ABᵀ)B/…` are those of `(ABᵀ)(BAᵀ)/((na−1)(nb−1))`, the squared
/// singular values of the `na × nb` matrix `ABᵀ` over `(na−1)(nb−1)`. So `tr √(Σa·Σb) =
/// Σ σᵢ(ABᵀ) / √((na−1)(nb−1))` and `tr Σa = ‖A‖²/(na−1)`: an `na × nb` SVD instead of two
/// `d × d` eigendecompositions (milliseconds instead of seconds at d = 2048), and without the
/// square roots of round-off that zero eigenvalues leave (singular values below numpy's
/// rank tolerance, `max(na, nb) · ε · σ_max`, count as 0).
///
/// # Errors
/// Fewer than two rows on a side, lengths that are not `n · d`, non-finite features, or a
/// decomposition that does not converge.
pub fn frechet_distance_of_features(
    a: &[f64],
    na: usize,
    b: &[f64],
    nb: usize,
    d: usize,
) -> Result<f64, String> {
    if na * nb < d * d {
        low_rank_distance(a, na, b, nb, d)
    } else {
        frechet_distance(&Gaussian::fit(a, na, d)?, &Gaussian::fit(b, nb, d)?)
    }
}

/// Centred rows and their mean.
fn centred(
    features: &[f64],
    n: usize,
    d: usize,
    what: &str,
) -> Result<(Mat<f64>, Vec<f64>), String> {
    if n < 2 {
        return Err(format!(
            "{what}: a covariance needs at least 2 feature vectors, got {n}"
        ));
    }
    if features.len() != n * d {
        return Err(format!(
            "{what}: {} values are not {n} feature vectors of {d}",
            features.len()
        ));
    }
    if features.iter().any(|v| !v.is_finite()) {
        return Err(format!("{what}: the features hold NaN or infinite values"));
    }
    let mean: Vec<f64> = (0..d)
        .map(|j| (0..n).map(|i| features[i * d + j]).sum::<f64>() / n as f64)
        .collect();
    Ok((
        Mat::from_fn(n, d, |i, j| features[i * d + j] - mean[j]),
        mean,
    ))
}

fn low_rank_distance(a: &[f64], na: usize, b: &[f64], nb: usize, d: usize) -> Result<f64, String> {
    let (ca, mean_a) = centred(a, na, d, "first features")?;
    let (cb, mean_b) = centred(b, nb, d, "second features")?;
    let mean_term: f64 = mean_a
        .iter()
        .zip(&mean_b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    let (sa, sb) = ((na - 1) as f64, (nb - 1) as f64);
    let trace_a = ca.squared_norm_l2() / sa;
    let trace_b = cb.squared_norm_l2() / sb;
    let cross = &ca * cb.transpose();
    let mut singular = cross
        .singular_values()
        .map_err(|e| format!("singular value decomposition failed: {e:?}"))?;
    let top = singular.iter().copied().fold(0.0, f64::max);
    let tolerance = na.max(nb) as f64 * f64::EPSILON * top;
    singular.retain(|s| *s > tolerance);
    let trace_sqrt = singular.iter().sum::<f64>() / (sa * sb).sqrt();
    Ok(mean_term + trace_a + trace_b - 2.0 * trace_sqrt)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// fixtures/frechet (tools/fixtures/frechet.py): features, and what pytorch-fid made of them.
    fn fixture(name: &str) -> (Vec<f64>, Vec<usize>) {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/frechet/cases.safetensors"
        );
        let bytes = std::fs::read(path).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let view = st.tensor(name).unwrap();
        let values = view
            .data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        (values, view.shape().to_vec())
    }

    fn expected(case: &str) -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/frechet/cases.json"
        );
        let all: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        all.into_iter().find(|c| c["name"] == case).unwrap()
    }

    fn fit(values: &[f64], shape: &[usize]) -> Gaussian {
        Gaussian::fit(values, shape[0], shape[1]).unwrap()
    }

    #[test]
    fn statistics_are_numpys_and_distances_pytorch_fids() {
        let (a, shape) = fixture("many.a");
        let fitted = fit(&a, &shape);
        let close = |x: &[f64], y: &[f64]| x.iter().zip(y).all(|(p, q)| (p - q).abs() <= 1e-12);
        assert!(close(&fitted.mean, &fixture("many.mu_a").0), "np.mean");
        assert!(
            close(&fitted.covariance, &fixture("many.sigma_a").0),
            "np.cov"
        );

        // N > d: scipy's sqrtm is real here, and both routes agree to round-off.
        let (b, b_shape) = fixture("many.b");
        let got = frechet_distance(&fitted, &fit(&b, &b_shape)).unwrap();
        let want = expected("many")["pytorch_fid"].as_f64().unwrap();
        assert!((got - want).abs() <= 1e-10 * want, "{got} vs {want}");

        // N < d: singular covariances; scipy's sqrtm leaves imaginary parts, the symmetric
        // route does not (its float64 numpy twin, itself equal to 40-digit arithmetic, within
        // 1e-10; pytorch-fid's round-off within 1e-7).
        let (x, xs) = fixture("few.a");
        let (y, ys) = fixture("few.b");
        let got = frechet_distance(&fit(&x, &xs), &fit(&y, &ys)).unwrap();
        let case = expected("few");
        let symmetric = case["symmetric"].as_f64().unwrap();
        let scipy = case["pytorch_fid"].as_f64().unwrap();
        assert!(
            (got - symmetric).abs() <= 1e-10 * symmetric,
            "{got} vs {symmetric}"
        );
        assert!((got - scipy).abs() <= 1e-7 * scipy, "{got} vs {scipy}");
    }

    #[test]
    fn identical_sets_are_zero_and_a_translation_costs_its_squared_length() {
        let (a, shape) = fixture("many.a");
        let g = fit(&a, &shape);
        let zero = frechet_distance(&g, &g.clone()).unwrap();
        let scale: f64 = (0..shape[1]).map(|i| g.covariance[i * shape[1] + i]).sum();
        assert!(zero.abs() <= 1e-8 * scale, "{zero}");
        let d = shape[1];
        let shift: Vec<f64> = (0..d).map(|j| -0.5 + j as f64 / (d - 1) as f64).collect();
        let moved: Vec<f64> = a
            .iter()
            .enumerate()
            .map(|(k, v)| v + shift[k % d])
            .collect();
        let got = frechet_distance(&g, &fit(&moved, &shape)).unwrap();
        let want: f64 = shift.iter().map(|s| s * s).sum();
        assert!((got - want).abs() <= 1e-8 * scale, "{got} vs {want}");
        assert!((want - expected("translated")["pytorch_fid"].as_f64().unwrap()).abs() < 1e-9);
    }

    #[test]
    fn the_low_rank_route_is_the_symmetric_one() {
        // N < d (the route per-prompt FID takes): the fixture's symmetric value.
        let (x, xs) = fixture("few.a");
        let (y, ys) = fixture("few.b");
        let got = frechet_distance_of_features(&x, xs[0], &y, ys[0], xs[1]).unwrap();
        let symmetric = expected("few")["symmetric"].as_f64().unwrap();
        assert!(
            (got - symmetric).abs() <= 1e-10 * symmetric,
            "{got} vs {symmetric}"
        );
        // N > d, forced through the low-rank route: pytorch-fid's value.
        let (a, shape) = fixture("many.a");
        let (b, b_shape) = fixture("many.b");
        let got = low_rank_distance(&a, shape[0], &b, b_shape[0], shape[1]).unwrap();
        let want = expected("many")["pytorch_fid"].as_f64().unwrap();
        assert!((got - want).abs() <= 1e-10 * want, "{got} vs {want}");
        // A set against itself is 0 to round-off.
        let zero = frechet_distance_of_features(&x, xs[0], &x, xs[0], xs[1]).unwrap();
        let scale: f64 = fit(&x, &xs).covariance.iter().step_by(xs[1] + 1).sum();
        assert!(zero.abs() <= 1e-12 * scale, "{zero} of {scale}");
        assert!(frechet_distance_of_features(&x[..xs[1]], 1, &y, ys[0], xs[1]).is_err());
    }

    #[test]
    fn malformed_statistics_are_refused() {
        assert!(Gaussian::fit(&[1.0, 2.0], 1, 2).is_err());
        assert!(Gaussian::fit(&[1.0; 5], 2, 2).is_err());
        let g = Gaussian::fit(&[0.0, 1.0, 2.0, 0.5], 2, 2).unwrap();
        let wide = Gaussian::fit(&[0.0, 1.0, 2.0, 0.5, 1.0, 1.0], 2, 3).unwrap();
        assert!(frechet_distance(&g, &wide)
            .unwrap_err()
            .contains("different widths"));
        let nan = Gaussian {
            mean: vec![f64::NAN, 0.0],
            ..g.clone()
        };
        assert!(frechet_distance(&g, &nan).unwrap_err().contains("NaN"));
    }
}
