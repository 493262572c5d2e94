//! Means and standard deviations, one definition each, as every crate reports them.

/// The arithmetic mean, summed in order (0 for no values).
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// The population standard deviation (divisor n): the spread of a batch itself, as training
/// logs report it.
pub fn population_std(values: &[f64]) -> f64 {
    let m = mean(values);
    (values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / values.len().max(1) as f64).sqrt()
}

/// The sample standard deviation (divisor n − 1, 0 for fewer than two values): an estimate of
/// the spread of the population the values come from, as tables over seeds report it.
pub fn sample_std(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let m = mean(values);
    (values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (values.len() - 1) as f64).sqrt()
}

/// Streaming mean and sample standard deviation in constant memory (Welford's update), for
/// evaluations whose sample count is unbounded. The mean is the in-order sum divided by the
/// count, bit for bit [`mean`] of the same values.
#[derive(Clone, Debug, Default)]
pub struct Running {
    count: usize,
    sum: f64,
    welford_mean: f64,
    m2: f64,
}

impl Running {
    pub fn push(&mut self, x: f64) {
        self.count += 1;
        self.sum += x;
        let delta = x - self.welford_mean;
        self.welford_mean += delta / self.count as f64;
        self.m2 += delta * (x - self.welford_mean);
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn mean(&self) -> f64 {
        self.sum / self.count.max(1) as f64
    }

    /// Sample standard deviation (divisor n − 1; 0 for fewer than two values).
    pub fn sample_std(&self) -> f64 {
        if self.count < 2 {
            return 0.0;
        }
        (self.m2 / (self.count - 1) as f64).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_equals_the_two_pass_formulas() {
        let values: Vec<f64> = (0..1000)
            .map(|i| ((i * 37) % 101) as f64 * 0.37 - 9.0)
            .collect();
        let mut r = Running::default();
        values.iter().for_each(|&v| r.push(v));
        assert_eq!(r.mean(), mean(&values));
        assert!((r.sample_std() - sample_std(&values)).abs() < 1e-12);
        assert_eq!(sample_std(&[1.0]), 0.0);
        assert!((population_std(&[1.0, 3.0]) - 1.0).abs() < 1e-15);
        assert!((sample_std(&[1.0, 3.0]) - 2f64.sqrt()).abs() < 1e-15);
    }
}
