//! Isotropic 2-D Gaussian mixtures on the host, in f64.
//!
//! They are the exact base models of the toy environment: every noised marginal of a mixture
//! is again a mixture, so densities, scores and products with Gaussian rewards are closed form.

use rand::Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

/// A point of the toy's 2-D sample space.
pub type Point = [f64; 2];

/// One isotropic Gaussian `weight · N(mean, std² I)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub mean: Point,
    pub std: f64,
    pub weight: f64,
}

/// A mixture of isotropic Gaussians whose weights sum to one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GaussianMixture {
    components: Vec<Component>,
}

const LOG_2PI: f64 = 1.837_877_066_409_345_3;

/// `log N(x; mean, var I)` in 2-D.
pub fn log_normal_2d(x: Point, mean: Point, var: f64) -> f64 {
    let d2 = (x[0] - mean[0]).powi(2) + (x[1] - mean[1]).powi(2);
    -0.5 * d2 / var - LOG_2PI - var.ln()
}

fn log_sum_exp(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = values.clone().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + values.map(|v| (v - max).exp()).sum::<f64>().ln()
}

impl GaussianMixture {
    /// Builds a mixture and normalises its weights.
    ///
    /// # Panics
    /// If there is no component or a weight or standard deviation is not positive.
    pub fn new(mut components: Vec<Component>) -> Self {
        assert!(!components.is_empty(), "a mixture needs a component");
        assert!(
            components.iter().all(|c| c.weight > 0.0 && c.std > 0.0),
            "mixture weights and standard deviations must be positive"
        );
        let total: f64 = components.iter().map(|c| c.weight).sum();
        for c in &mut components {
            c.weight /= total;
        }
        Self { components }
    }

    /// `n` equal components evenly spaced on a circle of `radius` around the origin.
    pub fn ring(n: usize, radius: f64, std: f64) -> Self {
        Self::new(
            (0..n)
                .map(|i| {
                    let angle = 2.0 * std::f64::consts::PI * i as f64 / n as f64;
                    Component {
                        mean: [radius * angle.cos(), radius * angle.sin()],
                        std,
                        weight: 1.0,
                    }
                })
                .collect(),
        )
    }

    /// A `side × side` grid of equal components with the given spacing, centred at the origin.
    pub fn grid(side: usize, spacing: f64, std: f64) -> Self {
        let offset = (side as f64 - 1.0) / 2.0;
        let mut components = Vec::with_capacity(side * side);
        for i in 0..side {
            for j in 0..side {
                components.push(Component {
                    mean: [(i as f64 - offset) * spacing, (j as f64 - offset) * spacing],
                    std,
                    weight: 1.0,
                });
            }
        }
        Self::new(components)
    }

    /// The mixture of several mixtures with equal weight each (the toy's unconditional model).
    pub fn union(mixtures: &[GaussianMixture]) -> Self {
        let share = 1.0 / mixtures.len() as f64;
        Self::new(
            mixtures
                .iter()
                .flat_map(|m| {
                    m.components.iter().map(move |c| Component {
                        weight: c.weight * share,
                        ..c.clone()
                    })
                })
                .collect(),
        )
    }

    pub fn components(&self) -> &[Component] {
        &self.components
    }

    pub fn len(&self) -> usize {
        self.components.len()
    }

    pub fn is_empty(&self) -> bool {
        self.components.is_empty()
    }

    /// Per-component log of `weight · N(x; mean, std²)`.
    pub fn component_log_densities(&self, x: Point) -> Vec<f64> {
        self.components
            .iter()
            .map(|c| c.weight.ln() + log_normal_2d(x, c.mean, c.std * c.std))
            .collect()
    }

    pub fn log_density(&self, x: Point) -> f64 {
        log_sum_exp(self.component_log_densities(x).into_iter())
    }

    /// Gradient of the log-density (the score).
    pub fn score(&self, x: Point) -> Point {
        let logs = self.component_log_densities(x);
        let total = log_sum_exp(logs.iter().copied());
        let mut g = [0.0; 2];
        for (c, l) in self.components.iter().zip(logs) {
            let r = (l - total).exp();
            let var = c.std * c.std;
            g[0] -= r * (x[0] - c.mean[0]) / var;
            g[1] -= r * (x[1] - c.mean[1]) / var;
        }
        g
    }

    /// The index of the component most likely to have produced `x`.
    pub fn most_likely_component(&self, x: Point) -> usize {
        self.component_log_densities(x)
            .into_iter()
            .enumerate()
            .fold((0, f64::NEG_INFINITY), |best, (i, l)| {
                if l > best.1 {
                    (i, l)
                } else {
                    best
                }
            })
            .0
    }

    /// The law of `√ᾱ·x₀ + √(1−ᾱ)·ε` for `x₀` from this mixture: the forward process marginal.
    pub fn noised(&self, alpha_bar: f64) -> Self {
        Self {
            components: self
                .components
                .iter()
                .map(|c| Component {
                    mean: [alpha_bar.sqrt() * c.mean[0], alpha_bar.sqrt() * c.mean[1]],
                    std: (alpha_bar * c.std * c.std + 1.0 - alpha_bar).sqrt(),
                    weight: c.weight,
                })
                .collect(),
        }
    }

    /// The mixture whose [`noised`](Self::noised) law at `alpha_bar` is this one: each
    /// component's mean over √ᾱ and variance (s² − (1 − ᾱ))/ᾱ.
    ///
    /// # Errors
    /// A component narrower than the noise itself (s² ≤ 1 − ᾱ) has no pre-image.
    pub fn pre_image(&self, alpha_bar: f64) -> Result<Self, String> {
        let noise = 1.0 - alpha_bar;
        let components = self
            .components
            .iter()
            .map(|c| {
                let var = (c.std * c.std - noise) / alpha_bar;
                if var > 0.0 && var.is_finite() {
                    Ok(Component {
                        mean: [c.mean[0] / alpha_bar.sqrt(), c.mean[1] / alpha_bar.sqrt()],
                        std: var.sqrt(),
                        weight: c.weight,
                    })
                } else {
                    Err(format!(
                        "a component of std {} is not the noising to ᾱ = {alpha_bar} of any \
                         Gaussian (its std must exceed √(1 − ᾱ) = {})",
                        c.std,
                        noise.sqrt()
                    ))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { components })
    }

    /// The normalised product `p(x)·N(x; centre, var I)`, again a mixture.
    pub fn times_gaussian(&self, centre: Point, var: f64) -> Self {
        self.product(&Self::new(vec![Component {
            mean: centre,
            std: var.sqrt(),
            weight: 1.0,
        }]))
    }

    /// The normalised product `p(x)·q(x)` of two mixtures, again a mixture (a component per
    /// pair, weighted in log space; pairs whose weight underflows against the heaviest are
    /// dropped, being negligible).
    pub fn product(&self, other: &Self) -> Self {
        let mut pairs = Vec::with_capacity(self.len() * other.len());
        for a in &self.components {
            for b in &other.components {
                let (va, vb) = (a.std * a.std, b.std * b.std);
                let var = va * vb / (va + vb);
                let mean = [
                    (a.mean[0] * vb + b.mean[0] * va) / (va + vb),
                    (a.mean[1] * vb + b.mean[1] * va) / (va + vb),
                ];
                let log_weight =
                    a.weight.ln() + b.weight.ln() + log_normal_2d(a.mean, b.mean, va + vb);
                pairs.push((mean, var.sqrt(), log_weight));
            }
        }
        let max = pairs.iter().map(|p| p.2).fold(f64::NEG_INFINITY, f64::max);
        Self::new(
            pairs
                .into_iter()
                .map(|(mean, std, lw)| Component {
                    mean,
                    std,
                    weight: (lw - max).exp(),
                })
                .filter(|c| c.weight > 0.0)
                .collect(),
        )
    }

    /// Independent samples.
    pub fn sample(&self, n: usize, rng: &mut impl Rng) -> Vec<Point> {
        let cumulative: Vec<f64> = self
            .components
            .iter()
            .scan(0.0, |acc, c| {
                *acc += c.weight;
                Some(*acc)
            })
            .collect();
        (0..n)
            .map(|_| {
                let u: f64 = rng.random();
                let k = cumulative
                    .iter()
                    .position(|&c| u < c)
                    .unwrap_or(self.components.len() - 1);
                let c = &self.components[k];
                let e0: f64 = rng.sample(StandardNormal);
                let e1: f64 = rng.sample(StandardNormal);
                [c.mean[0] + c.std * e0, c.mean[1] + c.std * e1]
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_matches_finite_differences_of_the_log_density() {
        let m = GaussianMixture::ring(8, 1.0, 0.2).noised(0.3);
        let h = 1e-5;
        for x in [[0.3, -0.2], [1.1, 0.4], [-0.7, -0.9]] {
            let s = m.score(x);
            for d in 0..2 {
                let mut xp = x;
                let mut xm = x;
                xp[d] += h;
                xm[d] -= h;
                let fd = (m.log_density(xp) - m.log_density(xm)) / (2.0 * h);
                assert!(
                    (fd - s[d]).abs() < 1e-6,
                    "dim {d}: fd {fd} vs score {}",
                    s[d]
                );
            }
        }
    }

    #[test]
    fn product_with_a_gaussian_is_the_normalised_pointwise_product() {
        let m = GaussianMixture::grid(3, 1.0, 0.3);
        let (centre, var) = ([0.4, -0.3], 0.5);
        let p = m.times_gaussian(centre, var);
        // The ratio p / (m · N) must be the same constant everywhere.
        let ratio = |x: Point| p.log_density(x) - m.log_density(x) - log_normal_2d(x, centre, var);
        let r0 = ratio([0.0, 0.0]);
        for x in [[1.0, 1.0], [-0.5, 0.8], [0.9, -1.2]] {
            assert!((ratio(x) - r0).abs() < 1e-9);
        }
    }

    #[test]
    fn noised_mixture_at_zero_signal_is_standard_normal() {
        let m = GaussianMixture::ring(8, 1.5, 0.1).noised(0.0);
        let x = [0.3, -1.1];
        assert!((m.log_density(x) - log_normal_2d(x, [0.0, 0.0], 1.0)).abs() < 1e-12);
    }

    #[test]
    fn pre_image_noises_back_to_the_mixture_and_refuses_narrow_components() {
        let m = GaussianMixture::ring(3, 1.0, 0.2).noised(0.6);
        let back = m.pre_image(0.6).unwrap().noised(0.6);
        for x in [[0.3, -0.2], [1.1, 0.4]] {
            assert!((back.log_density(x) - m.log_density(x)).abs() < 1e-12);
        }
        let narrow = GaussianMixture::ring(1, 0.0, 0.01);
        let err = narrow.pre_image(0.99).unwrap_err();
        assert!(err.contains("std 0.01"), "{err}");
    }

    #[test]
    fn product_of_mixtures_is_the_normalised_pointwise_product() {
        let p = GaussianMixture::ring(8, 1.0, 0.1);
        let q = GaussianMixture::new(vec![
            Component {
                mean: [1.0, 0.0],
                std: 0.25,
                weight: 0.7,
            },
            Component {
                mean: [-1.0, 0.5],
                std: 0.4,
                weight: 0.3,
            },
        ]);
        let pq = p.product(&q);
        let ratio = |x: Point| pq.log_density(x) - p.log_density(x) - q.log_density(x);
        let r0 = ratio([0.9, 0.1]);
        for x in [[0.7, 0.7], [-0.9, 0.2], [0.0, 1.0]] {
            assert!((ratio(x) - r0).abs() < 1e-9, "{x:?}");
        }
    }
}
