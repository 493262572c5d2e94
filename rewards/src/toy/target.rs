//! The exact distributions that distribution-matching objectives converge to on the toy.
//!
//! - `Power`: `exp(β·r(x))` alone: DAG-DB with the noising kernel q as backward policy.
//! - `Tilted`: `p_base(x)·exp(β·r(x))`: DAG's Remark 3 (the pretrained denoiser replaces q) and
//!   the residual objectives of ∇-GFlowNet.
//!
//! Samples come from the closed-form mixture when there is one, otherwise from a 512² grid.
//! Modes label samples for coverage: the reward's modes for `Power`, the base's for `Tilted`.

use rand::Rng;
use serde::{Deserialize, Serialize};

use bench_models::{GaussianMixture, Point};

use super::grid::GridDensity;
use crate::reward::ToyReward;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TargetKind {
    Power,
    Tilted,
}

/// The exact distribution an objective converges to on the toy, if it has one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TargetSpec {
    pub kind: TargetKind,
    /// The exponent on the reward in terms of true log-densities: β, times the number of
    /// dimensions when log-probabilities are averaged rather than summed.
    pub beta: f64,
}

#[derive(Clone, Debug)]
pub struct ExactTarget {
    closed_form: Option<GaussianMixture>,
    grid: GridDensity,
    modes: GaussianMixture,
    mode_weights: Vec<f64>,
}

/// Cells per side of the tabulated target.
const GRID_SIDE: usize = 512;

impl ExactTarget {
    /// The target of `kind` for the base law `base` (the sampler's exact output law) and
    /// exponent `beta` on the reward (the *effective* β: see the log-prob reduction).
    pub fn new(
        kind: TargetKind,
        base: &GaussianMixture,
        reward: &dyn ToyReward,
        beta: f64,
    ) -> Self {
        let (closed_form, modes) = match kind {
            TargetKind::Power => (reward.power_mixture(beta), reward.modes()),
            TargetKind::Tilted => (reward.tilted_mixture(base, beta), base.clone()),
        };
        // Cover the base (a tilted target lives inside its support) and, for `Power`, the
        // reward's modes widened by 1/√β.
        let widen = 1.0 / beta.clamp(1e-3, 1.0).sqrt();
        let reward_modes = match kind {
            TargetKind::Power => reward.modes().components().to_vec(),
            TargetKind::Tilted => vec![],
        };
        let spans = base
            .components()
            .iter()
            .map(|c| (c.mean, c.std))
            .chain(reward_modes.iter().map(|c| (c.mean, c.std * widen)));
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for (m, s) in spans {
            lo = lo.min(m[0].min(m[1]) - 6.0 * s);
            hi = hi.max(m[0].max(m[1]) + 6.0 * s);
        }
        let grid = match (&closed_form, kind) {
            (Some(m), _) => GridDensity::new(lo, hi, GRID_SIDE, |x| m.log_density(x)),
            (None, TargetKind::Power) => {
                GridDensity::new(lo, hi, GRID_SIDE, |x| beta * reward.value(x))
            }
            (None, TargetKind::Tilted) => GridDensity::new(lo, hi, GRID_SIDE, |x| {
                base.log_density(x) + beta * reward.value(x)
            }),
        };
        let mut mode_weights = vec![0.0; modes.len()];
        for (x, m) in grid.cells() {
            mode_weights[modes.most_likely_component(x)] += m;
        }
        Self {
            closed_form,
            grid,
            modes,
            mode_weights,
        }
    }

    /// Exact samples (to the grid's resolution when there is no closed form).
    pub fn sample(&self, n: usize, rng: &mut impl Rng) -> Vec<Point> {
        match &self.closed_form {
            Some(m) => m.sample(n, rng),
            None => self.grid.sample(n, rng),
        }
    }

    /// The normalised density.
    pub fn density(&self, x: Point) -> f64 {
        match &self.closed_form {
            Some(m) => m.log_density(x).exp(),
            None => self.grid.density(x),
        }
    }

    pub fn closed_form(&self) -> Option<&GaussianMixture> {
        self.closed_form.as_ref()
    }

    pub fn grid(&self) -> &GridDensity {
        &self.grid
    }

    /// The components samples are labelled with.
    pub fn modes(&self) -> &GaussianMixture {
        &self.modes
    }

    /// The target's probability of each mode's region (most-likely-component labelling).
    pub fn mode_weights(&self) -> &[f64] {
        &self.mode_weights
    }
}
