//! Samplers as Gaussian transitions: DDIM (with η), DDPM and first-order SDE-DPM-Solver++,
//! their exact log-probabilities and the noising kernel q(x_t | x_{t−1}) that GFlowNet
//! objectives use as a backward policy.

use burn::tensor::{backend::Backend, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use bench_core::validate::{self, Invalid, Validate};

use crate::dpm_solver::{DpmSolver, DpmSolverKind, FinalSigma};
use crate::gaussian::{DiagGaussian, LogProbReduction};
use crate::schedule::{NoiseSchedule, ScheduleConfig};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SamplerKind {
    /// DDIM with stochasticity `eta` (DDPO, DAG: eta = 1).
    #[default]
    Ddim,
    /// DDPM ancestral sampling with the "fixed small" posterior variance. Unlike diffusers'
    /// DDPMScheduler, the last step ends at ᾱ₀ (as DDIM with `set_alpha_to_one = false`)
    /// instead of ᾱ = 1, whose zero variance would make its log-probability infinite.
    Ddpm,
    /// First-order SDE-DPM-Solver++, ∇-GFlowNet's second MDP (20 steps in its paper): diffusers'
    /// `DPMSolverSinglestepScheduler` with `algorithm_type = "sde-dpmsolver++"` and
    /// `final_sigmas_type = "sigma_min"`, as its official code configures it. Timesteps are
    /// "linspace" (999, 949, …, 50 at 20 steps; `steps_offset` does not apply) and the last step
    /// ends at ᾱ₀, so every transition has a density. First order keeps the MDP Markov in x
    /// (2M's mean depends on the previous step's x̂₀); its Gaussian is the DDPM posterior on
    /// the same timesteps (a test proves it), computed here the solver's way. `eta` is unused.
    SdeDpmSolver,
}

/// Everything that defines how states are sampled and how log-probabilities are reduced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplerConfig {
    pub kind: SamplerKind,
    /// DDIM stochasticity; 1 makes DDIM's transition the DDPM posterior. Must be > 0 to train.
    pub eta: f64,
    /// `Mean` (the papers' code, the default) or `Sum` (the true log-density).
    pub log_prob: LogProbReduction,
    /// Classifier-free guidance weight w: ε = ε_∅ + w·(ε_c − ε_∅); 1 disables guidance.
    /// SD papers: 5 (DDPO, DAG, ∇-GFlowNet).
    pub guidance: f64,
    pub schedule: ScheduleConfig,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            kind: SamplerKind::Ddim,
            eta: 1.0,
            log_prob: LogProbReduction::Mean,
            guidance: 5.0,
            schedule: ScheduleConfig::default(),
        }
    }
}

impl SamplerConfig {
    /// The default sampler (the papers': DDIM, η = 1, CFG 5) with `steps` inference steps.
    #[must_use]
    pub fn with_steps(steps: usize) -> Self {
        Self {
            schedule: ScheduleConfig {
                inference_steps: steps,
                ..ScheduleConfig::default()
            },
            ..Self::default()
        }
    }
}

impl Validate for SamplerConfig {
    fn validate(&self) -> Result<(), Invalid> {
        if self.kind == SamplerKind::Ddim {
            validate::positive("eta", self.eta).map_err(|e| {
                Invalid::new(
                    "eta",
                    format!(
                        "{}: training needs transitions with a log-probability",
                        e.message
                    ),
                )
            })?;
        } else {
            validate::non_negative("eta", self.eta)?;
        }
        validate::finite("guidance", self.guidance)?;
        self.schedule.validate().map_err(|e| e.within("schedule"))?;
        // What only building the timesteps tells: leading spacing plus `steps_offset` past the
        // last training step, or a DPM-Solver schedule it cannot place.
        Scheduler::for_sampling(self.clone())
            .map(|_| ())
            .map_err(|e| Invalid::new("schedule", format!("cannot be built: {e}")))
    }
}

/// A schedule plus a transition rule.
#[derive(Clone, Debug)]
pub struct Scheduler {
    config: SamplerConfig,
    schedule: NoiseSchedule,
    /// The solver whose first-order steps are the transitions of `SdeDpmSolver`.
    dpm: Option<DpmSolver>,
}

/// Per-row coefficients, built on the host and uploaded as `[N, 1]` columns.
fn column<B: Backend>(values: Vec<f64>, device: &B::Device) -> Tensor<B, 2> {
    let n = values.len();
    let data: Vec<f32> = values.into_iter().map(|v| v as f32).collect();
    Tensor::from_data(TensorData::new(data, [n, 1]), device)
}

impl Scheduler {
    /// # Errors
    /// If the configuration cannot give finite transition log-probabilities.
    pub fn new(config: SamplerConfig) -> Result<Self, String> {
        if config.kind == SamplerKind::Ddim && config.eta <= 0.0 {
            return Err(format!(
                "sampler.eta = {}: transitions need eta > 0 to have a log-probability",
                config.eta
            ));
        }
        Self::for_sampling(config)
    }

    /// A scheduler that only samples: DDIM may also be deterministic (η = 0, diffusers'
    /// default), a transition without a density.
    ///
    /// # Errors
    /// A negative η or a schedule the training steps cannot hold.
    pub fn for_sampling(config: SamplerConfig) -> Result<Self, String> {
        if config.eta < 0.0 {
            return Err(format!("sampler.eta = {} must be ≥ 0", config.eta));
        }
        if config.schedule.inference_steps == 0
            || config.schedule.inference_steps > config.schedule.train_steps
        {
            return Err(format!(
                "sampler.schedule.inference_steps = {} must be in 1..={}",
                config.schedule.inference_steps, config.schedule.train_steps
            ));
        }
        if config.kind == SamplerKind::SdeDpmSolver {
            let dpm = DpmSolver::new(DpmSolverKind::Sde, &config.schedule)
                .map_err(|e| format!("sampler: {e}"))?
                .with_final_sigma(FinalSigma::SigmaMin);
            let schedule =
                NoiseSchedule::with_timesteps(&config.schedule, dpm.timesteps().to_vec());
            return Ok(Self {
                config,
                schedule,
                dpm: Some(dpm),
            });
        }
        let sc = &config.schedule;
        let stride = sc.train_steps / sc.inference_steps;
        if (sc.inference_steps - 1) * stride + sc.steps_offset >= sc.train_steps {
            return Err(format!(
                "sampler.schedule: {} inference steps with steps_offset {} reach timestep {} \
                 beyond the {} training steps",
                sc.inference_steps,
                sc.steps_offset,
                (sc.inference_steps - 1) * stride + sc.steps_offset,
                sc.train_steps
            ));
        }
        let schedule = NoiseSchedule::new(&config.schedule);
        Ok(Self {
            config,
            schedule,
            dpm: None,
        })
    }

    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    pub fn schedule(&self) -> &NoiseSchedule {
        &self.schedule
    }

    pub fn num_steps(&self) -> usize {
        self.schedule.num_steps()
    }

    pub fn reduction(&self) -> LogProbReduction {
        self.config.log_prob
    }

    pub fn guidance(&self) -> f64 {
        self.config.guidance
    }

    /// The solver behind `SdeDpmSolver`, which `for_sampling` always builds for that kind.
    fn dpm(&self) -> &DpmSolver {
        self.dpm
            .as_ref()
            .expect("SdeDpmSolver schedulers hold their solver")
    }

    /// Standard deviation of step `k`'s transition.
    pub fn transition_std(&self, k: usize) -> f64 {
        let (a, ap) = (self.schedule.alpha_bar(k), self.schedule.alpha_bar_prev(k));
        let posterior = ((1.0 - ap) / (1.0 - a) * (1.0 - a / ap)).sqrt();
        match self.config.kind {
            SamplerKind::Ddim => self.config.eta * posterior,
            SamplerKind::Ddpm => posterior,
            SamplerKind::SdeDpmSolver => self.dpm().first_order_coefficients(k).2,
        }
    }

    /// x̂₀ = (x_t − √(1−ᾱ_t)·ε) / √ᾱ_t for rows at steps `steps`.
    pub fn predict_x0<B: Backend>(
        &self,
        x_t: Tensor<B, 2>,
        eps: Tensor<B, 2>,
        steps: &[usize],
    ) -> Tensor<B, 2> {
        let device = x_t.device();
        let a: Vec<f64> = steps.iter().map(|&k| self.schedule.alpha_bar(k)).collect();
        let inv_sqrt_a = column::<B>(a.iter().map(|a| 1.0 / a.sqrt()).collect(), &device);
        let ratio = column::<B>(a.iter().map(|a| ((1.0 - a) / a).sqrt()).collect(), &device);
        x_t * inv_sqrt_a - eps * ratio
    }

    /// p(x_{t−1} | x_t) for the ε-prediction `eps` of the rows at steps `steps`.
    pub fn transition<B: Backend>(
        &self,
        x_t: Tensor<B, 2>,
        eps: Tensor<B, 2>,
        steps: &[usize],
    ) -> DiagGaussian<B> {
        let device = x_t.device();
        let std: Vec<f64> = steps.iter().map(|&k| self.transition_std(k)).collect();
        let x0 = self.predict_x0(x_t.clone(), eps.clone(), steps);
        let mean = match self.config.kind {
            SamplerKind::Ddim => {
                // μ = √ᾱ_prev·x̂₀ + √(1 − ᾱ_prev − σ²)·ε
                let c0 = steps
                    .iter()
                    .map(|&k| self.schedule.alpha_bar_prev(k).sqrt())
                    .collect();
                let ce = steps
                    .iter()
                    .zip(&std)
                    .map(|(&k, s)| (1.0 - self.schedule.alpha_bar_prev(k) - s * s).sqrt())
                    .collect();
                x0 * column::<B>(c0, &device) + eps * column::<B>(ce, &device)
            }
            SamplerKind::Ddpm => {
                // Posterior mean of q(x_{t−1} | x_t, x̂₀).
                let coeffs: Vec<(f64, f64)> = steps
                    .iter()
                    .map(|&k| {
                        let (a, ap) = (self.schedule.alpha_bar(k), self.schedule.alpha_bar_prev(k));
                        let alpha = a / ap;
                        (
                            ap.sqrt() * (1.0 - alpha) / (1.0 - a),
                            alpha.sqrt() * (1.0 - ap) / (1.0 - a),
                        )
                    })
                    .collect();
                x0 * column::<B>(coeffs.iter().map(|c| c.0).collect(), &device)
                    + x_t * column::<B>(coeffs.iter().map(|c| c.1).collect(), &device)
            }
            SamplerKind::SdeDpmSolver => {
                let dpm = self.dpm();
                let coeffs: Vec<(f64, f64, f64)> = steps
                    .iter()
                    .map(|&k| dpm.first_order_coefficients(k))
                    .collect();
                x_t * column::<B>(coeffs.iter().map(|c| c.0).collect(), &device)
                    + x0 * column::<B>(coeffs.iter().map(|c| c.1).collect(), &device)
            }
        };
        DiagGaussian {
            mean,
            std: column::<B>(std, &device),
        }
    }

    /// The noising kernel q(x_t | x_{t−1}) = N(√(ᾱ_t/ᾱ_prev)·x_{t−1}, 1 − ᾱ_t/ᾱ_prev), where
    /// `x_prev` holds the states reached by steps `steps`.
    pub fn noising_kernel<B: Backend>(
        &self,
        x_prev: Tensor<B, 2>,
        steps: &[usize],
    ) -> DiagGaussian<B> {
        let device = x_prev.device();
        let alpha: Vec<f64> = steps
            .iter()
            .map(|&k| self.schedule.alpha_bar(k) / self.schedule.alpha_bar_prev(k))
            .collect();
        DiagGaussian {
            mean: x_prev * column::<B>(alpha.iter().map(|a| a.sqrt()).collect(), &device),
            std: column::<B>(alpha.iter().map(|a| (1.0 - a).sqrt()).collect(), &device),
        }
    }
}
