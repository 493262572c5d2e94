//! DPM-Solver++ (2M), deterministic and SDE: diffusers' `DPMSolverMultistepScheduler` (0.31.0)
//! with SD's configuration (`solver_order = 2`, `solver_type = "midpoint"`,
//! `lower_order_final = true`, `final_sigmas_type = "zero"`, `timestep_spacing = "linspace"`,
//! ε-prediction, no thresholding, no Karras sigmas), written as transitions on flat `[N, D]`
//! states.
//!
//! Notation (diffusers'): σ_i = √((1 − ᾱ_{t_i}) / ᾱ_{t_i}) is the "VE" sigma of step `i`'s
//! state, α_i = 1 / √(σ_i² + 1) = √ᾱ and s_i = σ_i·α_i = √(1 − ᾱ) its VP scales,
//! λ_i = log(α_i / s_i) = −log σ_i, and h = λ_{i+1} − λ_i, so that e^{−h} = σ_{i+1} / σ_i.
//! The sigma after the last step is 0 (`final_sigmas_type = "zero"`), or σ_min under
//! [`FinalSigma::SigmaMin`], which the first-order SDE solver of ∇-GFlowNet's MDP uses
//! ([`DpmSolver::first_order_coefficients`]; the 2M transition keeps a first-order last step).
//!
//! Step `i` maps x_i to x_{i+1} = mean + std·z with mean linear in x_i, x̂₀ᵢ (from the model's ε at
//! step `i`) and x̂₀ᵢ₋₁ (the previous step's, the multistep history); given that history the
//! transition is a Gaussian. The deterministic solver has std = 0 at every step; the SDE solver
//! has std = s_{i+1}·√(1 − e^{−2h}) > 0 at every step but the last, where σ_{i+1} = 0 makes both
//! solvers return x̂₀ exactly: that transition has no density.
//!
//! The initial state is plain N(0, I) noise: diffusers' `init_noise_sigma` is 1.0 for this
//! scheduler and `scale_model_input` is the identity.

use burn::tensor::{backend::Backend, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::gaussian::DiagGaussian;
use crate::schedule::{alphas_cumprod, ScheduleConfig};

/// diffusers' `algorithm_type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DpmSolverKind {
    /// `"dpmsolver++"`: the probability-flow ODE, deterministic (what PAG samples SD with).
    #[default]
    Ode,
    /// `"sde-dpmsolver++"`: the reverse SDE, a Gaussian transition with a per-step std.
    Sde,
}

/// diffusers' `timestep_spacing`. `DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)`
/// inherits the pipeline's: SD v1.4's config names none (so "linspace", the scheduler's
/// default); configs that say "leading" give other timesteps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimestepSpacing {
    /// `round(linspace(0, T − 1, n + 1))` reversed without its last entry; no offset.
    #[default]
    Linspace,
    /// `k·(T // (n + 1))` for k = n, …, 1, plus `steps_offset`.
    Leading,
}

/// The per-step scalars of one transition: `mean = cx·x + c0·x̂₀ᵢ − c1·x̂₀ᵢ₋₁`, `std`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Coefficients {
    cx: f64,
    c0: f64,
    c1: f64,
    std: f64,
}

/// diffusers' `final_sigmas_type`: the σ of the state the last step reaches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FinalSigma {
    /// `"zero"` (the multistep solver's default): the last step returns x̂₀, without a density.
    #[default]
    Zero,
    /// `"sigma_min"`: σ of the first training timestep, √((1 − ᾱ₀)/ᾱ₀), so that the SDE
    /// solver's last step is still a Gaussian (∇-GFlowNet's SDE-DPM-Solver++ MDP).
    SigmaMin,
}

/// A DPM-Solver++ (2M) schedule: timesteps and sigmas for a number of inference steps.
#[derive(Clone, Debug)]
pub struct DpmSolver {
    kind: DpmSolverKind,
    timesteps: Vec<usize>,
    /// σ per state, `num_steps + 1` long, the last 0 or σ_min (see [`FinalSigma`]).
    sigmas: Vec<f64>,
    /// √((1 − ᾱ₀)/ᾱ₀), the smallest σ of the training schedule.
    sigma_min: f64,
}

/// A `[N, 1]` column holding `value` in every row (the layout `DiagGaussian::std` expects).
fn constant_column<B: Backend>(value: f64, rows: usize, device: &B::Device) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(vec![value as f32; rows], [rows, 1]), device)
}

impl DpmSolver {
    /// Timesteps follow diffusers' "linspace" spacing: `round(linspace(0, T − 1, n + 1))`
    /// reversed, without its last entry (0), with numpy's round-half-to-even; for SD at 20 steps
    /// 999, 949, …, 50. diffusers ignores `steps_offset` under this spacing, and so do we.
    ///
    /// # Errors
    /// If the schedule has no training steps or `inference_steps` is not in `1..=train_steps`.
    pub fn new(kind: DpmSolverKind, schedule: &ScheduleConfig) -> Result<Self, String> {
        Self::with_spacing(kind, schedule, TimestepSpacing::Linspace)
    }

    /// [`DpmSolver::new`] with another timestep spacing (`Leading` adds `steps_offset`).
    ///
    /// # Errors
    /// As [`DpmSolver::new`], or timesteps beyond the training steps.
    pub fn with_spacing(
        kind: DpmSolverKind,
        schedule: &ScheduleConfig,
        spacing: TimestepSpacing,
    ) -> Result<Self, String> {
        let (n, steps) = (schedule.train_steps, schedule.inference_steps);
        if n < 2 || steps == 0 || steps > n {
            return Err(format!(
                "dpm-solver: inference_steps = {steps} must be in 1..={n} (train_steps ≥ 2)"
            ));
        }
        let alphas_cumprod = alphas_cumprod(schedule);
        let timesteps: Vec<usize> = match spacing {
            // numpy's linspace: i·(stop / steps) with the endpoint set exactly;
            // `lambda_min_clipped` is −∞, so diffusers' `last_timestep` is T and stop is T − 1.
            TimestepSpacing::Linspace => {
                let stop = (n - 1) as f64;
                let delta = stop / steps as f64;
                (1..=steps)
                    .rev()
                    .map(|i| {
                        let v = if i == steps { stop } else { i as f64 * delta };
                        v.round_ties_even() as usize
                    })
                    .collect()
            }
            TimestepSpacing::Leading => {
                let ratio = n / (steps + 1);
                (1..=steps)
                    .rev()
                    .map(|k| k * ratio + schedule.steps_offset)
                    .collect()
            }
        };
        if let Some(&t) = timesteps.iter().find(|&&t| t >= n) {
            return Err(format!(
                "dpm-solver: timestep {t} is beyond the {n} training steps"
            ));
        }
        let sigma_of = |t: usize| ((1.0 - alphas_cumprod[t]) / alphas_cumprod[t]).sqrt();
        let sigmas = timesteps
            .iter()
            .map(|&t| sigma_of(t))
            .chain(std::iter::once(0.0))
            .collect();
        Ok(Self {
            kind,
            timesteps,
            sigmas,
            sigma_min: sigma_of(0),
        })
    }

    /// The same solver ending at σ = 0 or σ_min (diffusers' `final_sigmas_type`).
    pub fn with_final_sigma(mut self, last: FinalSigma) -> Self {
        let value = match last {
            FinalSigma::Zero => 0.0,
            FinalSigma::SigmaMin => self.sigma_min,
        };
        *self.sigmas.last_mut().expect("num_steps + 1 sigmas") = value;
        self
    }

    pub fn kind(&self) -> DpmSolverKind {
        self.kind
    }

    /// Number of transitions.
    pub fn num_steps(&self) -> usize {
        self.timesteps.len()
    }

    /// The timestep the denoiser is called with at each step (highest noise first).
    pub fn timesteps(&self) -> &[usize] {
        &self.timesteps
    }

    /// σ of the state before each step, then 0 for the final sample (`num_steps + 1` values).
    pub fn sigmas(&self) -> &[f64] {
        &self.sigmas
    }

    /// (α, s) = (√ᾱ, √(1 − ᾱ)) of the state with VE sigma `sigma` (diffusers'
    /// `_sigma_to_alpha_sigma_t`).
    fn alpha_sigma(sigma: f64) -> (f64, f64) {
        let alpha = 1.0 / (sigma * sigma + 1.0).sqrt();
        (alpha, sigma * alpha)
    }

    /// Whether step `i` uses the 2nd-order multistep update: when the previous x̂₀ is given and
    /// `i` is neither step 0 (no previous step) nor the last step (diffusers forces 1st order
    /// there, both because `final_sigmas_type = "zero"` and, under 15 steps, because of
    /// `lower_order_final`; its σ_{i+1} = 0 makes h infinite anyway).
    pub fn is_second_order(&self, i: usize, has_prev_x0: bool) -> bool {
        has_prev_x0 && i > 0 && i + 1 < self.num_steps()
    }

    /// Whether step `i`'s transition has a density: only the SDE solver's steps before the last.
    /// The others have std 0, and `DiagGaussian::log_prob` must not be called on them.
    pub fn has_density(&self, i: usize) -> bool {
        self.transition_std(i) > 0.0
    }

    /// Standard deviation of step `i`'s transition: s_{i+1}·√(1 − e^{−2h}) for the SDE solver
    /// (0 at the last step when it ends at σ = 0), 0 for the ODE solver.
    pub fn transition_std(&self, i: usize) -> f64 {
        self.coefficients(i, false).std
    }

    fn coefficients(&self, i: usize, second_order: bool) -> Coefficients {
        let (sigma, sigma_next) = (self.sigmas[i], self.sigmas[i + 1]);
        let (_, s) = Self::alpha_sigma(sigma);
        let (alpha_next, s_next) = Self::alpha_sigma(sigma_next);
        // e^{−h} = σ_{i+1} / σ_i; exactly 0 at a last step ending at σ = 0 (h = +∞ in diffusers).
        let exp_neg_h = sigma_next / sigma;
        // Weight of D0 + ½·D1 with D0 = x̂₀ᵢ, D1 = (x̂₀ᵢ − x̂₀ᵢ₋₁) / r0, r0 = h_{i−1} / h_i:
        // that is (1 + 1/(2 r0))·x̂₀ᵢ − 1/(2 r0)·x̂₀ᵢ₋₁.
        let half_inv_r0 = if second_order {
            let h = (sigma / sigma_next).ln();
            let h_prev = (self.sigmas[i - 1] / sigma).ln();
            0.5 * h / h_prev
        } else {
            0.0
        };
        let (cx, w, std) = match self.kind {
            // x = (s'/s)·x − α'(e^{−h} − 1)·(D0 + ½ D1)
            DpmSolverKind::Ode => (s_next / s, alpha_next * (1.0 - exp_neg_h), 0.0),
            // x = (s'/s)e^{−h}·x + α'(1 − e^{−2h})·(D0 + ½ D1) + s'√(1 − e^{−2h})·z
            DpmSolverKind::Sde => {
                let one_minus = 1.0 - exp_neg_h * exp_neg_h;
                (
                    s_next / s * exp_neg_h,
                    alpha_next * one_minus,
                    s_next * one_minus.sqrt(),
                )
            }
        };
        Coefficients {
            cx,
            c0: w * (1.0 + half_inv_r0),
            c1: w * half_inv_r0,
            std,
        }
    }

    /// Step `i`'s first-order update as (coefficient of x, coefficient of x̂₀, std): the
    /// singlestep solver's `dpm_solver_first_order_update`, a Markov transition in x alone.
    pub fn first_order_coefficients(&self, i: usize) -> (f64, f64, f64) {
        let c = self.coefficients(i, false);
        (c.cx, c.c0, c.std)
    }

    /// x̂₀ = (x − s_i·ε) / α_i at step `i`: the data prediction DPM-Solver++ integrates
    /// (diffusers' `convert_model_output`).
    pub fn predict_x0<B: Backend>(
        &self,
        x: Tensor<B, 2>,
        eps: Tensor<B, 2>,
        i: usize,
    ) -> Tensor<B, 2> {
        let (alpha, s) = Self::alpha_sigma(self.sigmas[i]);
        x.mul_scalar((1.0 / alpha) as f32) - eps.mul_scalar((s / alpha) as f32)
    }

    /// Step `i`'s transition from states `x` (all rows at step `i`) given the model's `eps` and
    /// the x̂₀ the previous step returned (`None` at the start of a run: a 1st-order step, as
    /// diffusers does for its first step whatever the index; ignored at step 0 and at the last
    /// step, see [`is_second_order`](Self::is_second_order)). Returns the Gaussian over
    /// x_{i+1} (std 0 for the ODE solver and at the last step: see
    /// [`has_density`](Self::has_density)) and this step's x̂₀ to pass to step `i + 1`.
    ///
    /// The mean depends on `prev_x0`, hence on the previous step's model output: a log-prob
    /// recomputed under a new policy must use that policy's previous x̂₀ for it to be the
    /// policy's own transition density.
    ///
    /// # Panics
    /// If `i >= num_steps()`.
    pub fn transition<B: Backend>(
        &self,
        x: Tensor<B, 2>,
        eps: Tensor<B, 2>,
        i: usize,
        prev_x0: Option<Tensor<B, 2>>,
    ) -> (DiagGaussian<B>, Tensor<B, 2>) {
        assert!(i < self.num_steps(), "step {i} of {}", self.num_steps());
        let [rows, _] = x.dims();
        let device = x.device();
        let x0 = self.predict_x0(x.clone(), eps, i);
        let prev_x0 = prev_x0.filter(|_| self.is_second_order(i, true));
        let c = self.coefficients(i, prev_x0.is_some());
        let mut mean = x.mul_scalar(c.cx as f32) + x0.clone().mul_scalar(c.c0 as f32);
        if let Some(prev) = prev_x0 {
            mean = mean - prev.mul_scalar(c.c1 as f32);
        }
        let gaussian = DiagGaussian {
            mean,
            std: constant_column::<B>(c.std, rows, &device),
        };
        (gaussian, x0)
    }
}
