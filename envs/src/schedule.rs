//! The variance-preserving noise schedule of Stable Diffusion and its inference timesteps.

use bench_core::validate::{self, Invalid, Validate};
use serde::{Deserialize, Serialize};

/// The training schedule: SD's scaled-linear β from 0.00085 to 0.012 over 1000 steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    pub beta_start: f64,
    pub beta_end: f64,
    pub train_steps: usize,
    /// Number of sampling steps (SD and the papers: 50).
    pub inference_steps: usize,
    /// diffusers' `steps_offset` (1 for SD), giving timesteps 981, 961, …, 1 at 50 steps.
    pub steps_offset: usize,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            beta_start: 0.00085,
            beta_end: 0.012,
            train_steps: 1000,
            inference_steps: 50,
            steps_offset: 1,
        }
    }
}

impl Validate for ScheduleConfig {
    fn validate(&self) -> Result<(), Invalid> {
        validate::count_within("train_steps", self.train_steps, 1, 100_000)?;
        validate::count_within("inference_steps", self.inference_steps, 1, self.train_steps)?;
        validate::within("beta_start", self.beta_start, f64::MIN_POSITIVE, 1.0)?;
        validate::within("beta_end", self.beta_end, self.beta_start, 1.0)?;
        validate::count_within("steps_offset", self.steps_offset, 0, self.train_steps - 1)
    }
}

/// ᾱ_t = ∏_{s ≤ t} (1 − β_s) of SD's scaled-linear β (√β linear in t), t = 0 … T − 1.
pub fn alphas_cumprod(config: &ScheduleConfig) -> Vec<f64> {
    let n = config.train_steps;
    let (lo, hi) = (config.beta_start.sqrt(), config.beta_end.sqrt());
    let mut acc = 1.0;
    (0..n)
        .map(|i| {
            let b = lo + (hi - lo) * i as f64 / (n - 1) as f64;
            acc *= 1.0 - b * b;
            acc
        })
        .collect()
}

/// ᾱ over the training steps and the inference timesteps, highest noise first.
#[derive(Clone, Debug)]
pub struct NoiseSchedule {
    alphas_cumprod: Vec<f64>,
    timesteps: Vec<usize>,
    /// ᾱ before the last step; SD sets `set_alpha_to_one = false`, so this is ᾱ₀, not 1.
    final_alpha_cumprod: f64,
}

impl NoiseSchedule {
    /// SD's DDIM/DDPM timesteps: diffusers' "leading" spacing plus `steps_offset`.
    pub fn new(config: &ScheduleConfig) -> Self {
        let stride = config.train_steps / config.inference_steps;
        let timesteps = (0..config.inference_steps)
            .rev()
            .map(|k| k * stride + config.steps_offset)
            .collect();
        Self::with_timesteps(config, timesteps)
    }

    /// The training schedule of `config` sampled at `timesteps` (highest first, each below
    /// `train_steps`); the last step ends at ᾱ₀.
    pub fn with_timesteps(config: &ScheduleConfig, timesteps: Vec<usize>) -> Self {
        let alphas_cumprod = alphas_cumprod(config);
        Self {
            final_alpha_cumprod: alphas_cumprod[0],
            alphas_cumprod,
            timesteps,
        }
    }

    /// Number of sampling transitions.
    pub fn num_steps(&self) -> usize {
        self.timesteps.len()
    }

    /// Training-schedule timestep of inference step `k` (k = 0 is the noisiest).
    pub fn timestep(&self, k: usize) -> usize {
        self.timesteps[k]
    }

    pub fn timesteps(&self) -> &[usize] {
        &self.timesteps
    }

    /// ᾱ at the state before step `k` is taken (x_t with t = timestep(k)).
    pub fn alpha_bar(&self, k: usize) -> f64 {
        self.alphas_cumprod[self.timesteps[k]]
    }

    /// ᾱ of the state step `k` leads to.
    pub fn alpha_bar_prev(&self, k: usize) -> f64 {
        match self.timesteps.get(k + 1) {
            Some(&t) => self.alphas_cumprod[t],
            None => self.final_alpha_cumprod,
        }
    }

    /// ᾱ of the state at position `i` of a trajectory (0 = x_T, num_steps = x_0).
    pub fn alpha_bar_of_state(&self, i: usize) -> f64 {
        if i < self.num_steps() {
            self.alpha_bar(i)
        } else {
            self.final_alpha_cumprod
        }
    }

    /// Timestep of the state at position `i` (0 for the final sample).
    pub fn timestep_of_state(&self, i: usize) -> usize {
        self.timesteps.get(i).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sd_timesteps_and_alphas() {
        let s = NoiseSchedule::new(&ScheduleConfig::default());
        assert_eq!(s.num_steps(), 50);
        assert_eq!(s.timestep(0), 981);
        assert_eq!(s.timestep(1), 961);
        assert_eq!(s.timestep(49), 1);
        // diffusers: alphas_cumprod[0] = 1 - 0.00085; alphas_cumprod[999] ≈ 0.0046603.
        assert!((s.alpha_bar_prev(49) - 0.99915).abs() < 1e-12);
        assert!((s.alphas_cumprod[999] - 0.004_660_3).abs() < 1e-6);
    }
}
