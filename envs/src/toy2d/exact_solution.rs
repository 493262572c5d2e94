//! The exact solution of a distribution-matching objective on the toy, as instruments: an
//! *oracle* whose ε is the exact ε of the target's noised marginals (a run then starts at the
//! solution, and one sees whether the objective keeps it), and the *exact flows* a
//! detailed-balance objective would have to learn (one sees what the policy does when the flow
//! is not the problem).
//!
//! The target is the law of the sampler's output x₀, which sits at ᾱ of the last state (SD's
//! schedule stops at timestep 0, not at clean data). Its marginal at state k is its pre-image
//! (the clean mixture that noises to it) noised to ᾱ_k. The flow of the balance with the
//! noising kernel as backward policy is F_k = Z·p*_k, with Z = ∫exp(β·r) so that the terminal
//! flow is exp(β·r); with the pretrained denoiser as backward policy (the residual target
//! p_base·exp(β·r)/Z) it is F_k = Z·p*_k/p_base,k = E_base[exp(β·r(x₀)) | x_k].

use bench_models::{GaussianMixture, Point};

use crate::schedule::NoiseSchedule as Schedule;

/// A run's exact target on the toy, per prompt; the harness builds it from the reward and the
/// objective (the environment knows neither).
#[derive(Clone, Debug, PartialEq)]
pub struct ExactSolution {
    /// Per prompt, the target law of the sampler's output x₀.
    pub targets: Vec<GaussianMixture>,
    /// Per prompt, log Z: the terminal flow Z·p*(x₀) (over p_base(x₀) when relative) is
    /// exp(β·r(x₀)).
    pub log_z: Vec<f64>,
    /// The balance's backward policy is the pretrained denoiser: flows are relative to the
    /// base's marginals.
    pub relative_to_base: bool,
}

/// The exact log-flow of every (prompt, state), tabulated as mixtures.
#[derive(Clone, Debug)]
pub(crate) struct ExactFlows {
    /// `[prompt][state]`: the target's marginal and, when relative, the base's.
    marginals: Vec<Vec<(GaussianMixture, Option<GaussianMixture>)>>,
    log_z: Vec<f64>,
}

impl ExactSolution {
    /// The clean mixtures whose noising to the output's ᾱ is each prompt's target.
    ///
    /// # Errors
    /// A target component narrower than the last step's noise (it has no pre-image).
    pub(crate) fn pre_images(&self, schedule: &Schedule) -> Result<Vec<GaussianMixture>, String> {
        let a0 = schedule.alpha_bar_of_state(schedule.num_steps());
        self.targets
            .iter()
            .map(|t| t.pre_image(a0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the run's exact target cannot be noised from clean data: {e}"))
    }

    /// # Errors
    /// As [`ExactSolution::pre_images`], or a solution for another number of prompts.
    pub(crate) fn flows(
        &self,
        scenes: &[GaussianMixture],
        schedule: &Schedule,
    ) -> Result<ExactFlows, String> {
        if self.targets.len() != scenes.len() || self.log_z.len() != scenes.len() {
            return Err(format!(
                "an exact solution for {} prompts given to a toy of {}",
                self.targets.len(),
                scenes.len()
            ));
        }
        let pre = self.pre_images(schedule)?;
        let marginals = pre
            .iter()
            .zip(scenes)
            .map(|(target, scene)| {
                (0..=schedule.num_steps())
                    .map(|k| {
                        let a = schedule.alpha_bar_of_state(k);
                        let base = self.relative_to_base.then(|| scene.noised(a));
                        (target.noised(a), base)
                    })
                    .collect()
            })
            .collect();
        Ok(ExactFlows {
            marginals,
            log_z: self.log_z.clone(),
        })
    }
}

impl ExactFlows {
    /// log F of point `x` at trajectory position `state` for `prompt`, in true (summed) log
    /// units.
    pub(crate) fn log_flow(&self, x: Point, state: usize, prompt: usize) -> f64 {
        let (target, base) = &self.marginals[prompt][state];
        let relative = base.as_ref().map_or(0.0, |b| b.log_density(x));
        self.log_z[prompt] + target.log_density(x) - relative
    }
}
