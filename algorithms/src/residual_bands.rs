//! δ² by band of the denoising chain, for `metrics.csv`: on fixed-variance Gaussian steps the
//! last transitions cannot balance (≈ 3 nats² at the second-to-last of 50 steps, even at the
//! exact solution; shared/research/db-toy-audit.md), and a single mean hides whether the
//! rest of the chain is balanced. Bands: every step before the last three, then each of them.

/// Column names, in band order.
pub const BANDS: [&str; 4] = [
    "delta2_early",
    "delta2_third_last",
    "delta2_second_last",
    "delta2_last",
];

/// Running sums of δ² per band over an epoch.
#[derive(Clone, Debug, Default)]
pub struct ResidualBands {
    sums: [f64; 4],
    counts: [usize; 4],
}

impl ResidualBands {
    /// The band of trajectory position `k` (the transition out of the k-th state) of `steps`.
    pub fn band(k: usize, steps: usize) -> usize {
        match steps.saturating_sub(k + 1) {
            0 => 3,
            1 => 2,
            2 => 1,
            _ => 0,
        }
    }

    /// Adds the squared residuals `delta2` of transitions at positions `positions`.
    pub fn add(&mut self, positions: &[usize], delta2: &[f64], steps: usize) {
        for (&k, &d) in positions.iter().zip(delta2) {
            let b = Self::band(k, steps);
            self.sums[b] += d;
            self.counts[b] += 1;
        }
    }

    /// The mean δ² of each band that saw a transition.
    pub fn scalars(&self) -> Vec<(String, f64)> {
        BANDS
            .iter()
            .zip(self.sums.iter().zip(&self.counts))
            .filter(|(_, (_, &n))| n > 0)
            .map(|(name, (s, &n))| (name.to_string(), s / n as f64))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_three_positions_have_their_own_bands() {
        let bands: Vec<usize> = (0..50).map(|k| ResidualBands::band(k, 50)).collect();
        assert!(bands[..47].iter().all(|&b| b == 0));
        assert_eq!(&bands[47..], &[1, 2, 3]);
        // A chain of two steps: its two positions are the last two.
        assert_eq!(ResidualBands::band(0, 2), 2);
        assert_eq!(ResidualBands::band(1, 2), 3);
        let mut r = ResidualBands::default();
        r.add(&[0, 1, 49, 49], &[1.0, 3.0, 4.0, 6.0], 50);
        assert_eq!(
            r.scalars(),
            vec![("delta2_early".into(), 2.0), ("delta2_last".into(), 5.0)]
        );
    }
}
