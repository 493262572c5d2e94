//! `toy2d`: a 2-D conditional diffusion whose base model is exact.
//!
//! Prompts name Gaussian mixtures ([`scenes`]); the base ε-prediction is the closed-form one of
//! the noised mixture ([`exact_eps`]), and the policy adds a small zero-initialised adapter
//! ([`networks`]), so that training starts at the base model exactly, as LoRA does on SD.

pub mod exact_eps;
pub mod exact_solution;
pub mod networks;
pub mod scenes;

use burn::tensor::{
    backend::{AutodiffBackend, Backend},
    Tensor,
};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use bench_core::validate::{self, Invalid, Validate};
use bench_core::SampleKind;
use bench_models::GaussianMixture;
use burn::tensor::TensorData;

use crate::env::{Denoiser, DiffusionEnv, DiffusionModel, EnvInfo, Environment};
use crate::sampler::{SamplerConfig, Scheduler};
use exact_eps::ExactEps;
use exact_solution::ExactFlows;
pub use exact_solution::ExactSolution;
use networks::{Features, ToyFieldNet, ToyPolicy, ToyStateNet};

/// The toy's configuration (`env: Toy2d(...)` in a sweep).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Toy2dConfig {
    /// Scene names used as prompts; see [`scenes::SCENES`].
    pub prompts: Vec<String>,
    /// Width of the adapter's and flow network's hidden layers.
    pub hidden: usize,
    /// Number of sinusoidal time features.
    pub time_features: usize,
    /// Instrument: the policy's ε is the exact ε of the run's target (its noised marginals)
    /// instead of the base's, so that training starts at the exact solution; the base model
    /// (backward policies, regularisers) is unchanged. Needs a target in closed form.
    #[serde(skip_serializing_if = "is_false")]
    pub oracle: bool,
    /// Instrument: detailed-balance objectives use the exact log-flows of the run's target
    /// (log Z + log p*_t, relative to the base's marginals for the residual target) in place of
    /// the flow network and its look-ahead term. They are the final β's: set `beta_anneal: 0`.
    #[serde(skip_serializing_if = "is_false")]
    pub exact_flows: bool,
}

/// Instruments left off are not written, so that runs without them keep their ids.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_false(b: &bool) -> bool {
    !*b
}

impl Default for Toy2dConfig {
    fn default() -> Self {
        Self {
            prompts: vec!["ring8".into(), "grid9".into()],
            hidden: 64,
            time_features: 16,
            oracle: false,
            exact_flows: false,
        }
    }
}

impl Validate for Toy2dConfig {
    fn validate(&self) -> Result<(), Invalid> {
        if self.prompts.is_empty() {
            return Err(Invalid::new("prompts", "needs at least one scene"));
        }
        validate::at_least("hidden", self.hidden, 1)?;
        validate::at_least("time_features", self.time_features, 2)?;
        // Three networks (policy, flow, field) of two hidden layers, each with its gradient
        // and Adam's two moments: four f32 copies.
        let (h, w) = (self.hidden as f64, self.features_width() as f64);
        let bytes = 3.0 * (w * h + h * h + 2.0 * h + 3.0 * h) * 4.0 * 4.0;
        validate::fits_in_memory("", bytes)
            .map_err(|e| Invalid::new("hidden", format!("= {}{e}", self.hidden)))?;
        Ok(())
    }
}

impl Toy2dConfig {
    /// Width of the networks' input: the point, time features, a one-hot prompt and the null.
    fn features_width(&self) -> usize {
        2 + self.time_features + self.prompts.len() + 1
    }

    /// Whether an instrument needs the run's exact solution.
    pub fn instrumented(&self) -> bool {
        self.oracle || self.exact_flows
    }

    /// The same toy without instruments.
    pub fn plain(&self) -> Self {
        Self {
            oracle: false,
            exact_flows: false,
            ..self.clone()
        }
    }
}

/// The toy's diffusion model on one backend: the exact ε of each scene plus the policy's
/// adapter.
pub struct Toy2dModel<B: Backend> {
    device: B::Device,
    scheduler: Scheduler,
    exact: ExactEps<B>,
    /// What the policy's adapter adds to: the base's ε, or the oracle's.
    reference: Option<ExactEps<B>>,
    flows: Option<ExactFlows>,
    features: Features,
}

/// What a toy model is built from besides its scheduler and features.
struct Tables<'a> {
    scenes: &'a [GaussianMixture],
    /// The oracle's clean mixtures.
    oracle: Option<&'a [GaussianMixture]>,
    flows: Option<&'a ExactFlows>,
}

impl<B: Backend> Toy2dModel<B> {
    fn new(
        tables: &Tables<'_>,
        scheduler: Scheduler,
        features: Features,
        device: B::Device,
    ) -> Self {
        Self {
            exact: ExactEps::new(tables.scenes, &device),
            reference: tables.oracle.map(|m| ExactEps::new(m, &device)),
            flows: tables.flows.cloned(),
            device,
            scheduler,
            features,
        }
    }

    /// Network inputs for states at trajectory positions `states`.
    fn state_features(&self, x: Tensor<B, 2>, states: &[usize], prompts: &[usize]) -> Tensor<B, 2> {
        let s = self.scheduler.schedule();
        let t: Vec<f64> = states
            .iter()
            .map(|&i| s.timestep_of_state(i) as f64)
            .collect();
        self.features.build(x, &t, prompts, &self.device)
    }
}

impl<B: Backend> DiffusionModel<B> for Toy2dModel<B> {
    type Policy = ToyPolicy<B>;
    type StateNet = ToyStateNet<B>;
    type FieldNet = ToyFieldNet<B>;

    fn device(&self) -> &B::Device {
        &self.device
    }

    fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    fn dims(&self) -> usize {
        2
    }

    fn eps_unguided(
        &self,
        net: Denoiser<'_, ToyPolicy<B>>,
        x: Tensor<B, 2>,
        steps: &[usize],
        prompts: Option<&[usize]>,
    ) -> Tensor<B, 2> {
        let s = self.scheduler.schedule();
        let alpha_bars: Vec<f64> = steps.iter().map(|&k| s.alpha_bar(k)).collect();
        let rows = self.features.condition_rows(prompts, steps.len());
        let base = self.exact.eps(x.clone(), &alpha_bars, &rows);
        match net {
            Denoiser::Base => base,
            Denoiser::Policy(policy) => {
                let reference = match &self.reference {
                    Some(oracle) => oracle.eps(x.clone(), &alpha_bars, &rows),
                    None => base,
                };
                let t: Vec<f64> = steps.iter().map(|&k| s.timestep(k) as f64).collect();
                let input = self.features.build(x, &t, &rows, &self.device);
                reference + policy.forward(input)
            }
        }
    }

    fn state_value(
        &self,
        net: &ToyStateNet<B>,
        x: Tensor<B, 2>,
        states: &[usize],
        prompts: &[usize],
    ) -> Tensor<B, 1> {
        net.forward(self.state_features(x, states, prompts))
    }

    fn field(
        &self,
        net: &ToyFieldNet<B>,
        x: Tensor<B, 2>,
        states: &[usize],
        prompts: &[usize],
    ) -> Tensor<B, 2> {
        net.forward(self.state_features(x, states, prompts))
    }

    fn exact_log_flow(
        &self,
        x: Tensor<B, 2>,
        states: &[usize],
        prompts: &[usize],
    ) -> Option<Tensor<B, 1>> {
        let flows = self.flows.as_ref()?;
        let n = states.len();
        let points = x
            .into_data()
            .convert::<f64>()
            .to_vec::<f64>()
            .expect("toy states are floats");
        let values: Vec<f32> = points
            .chunks(2)
            .zip(states.iter().zip(prompts))
            .map(|(p, (&k, &c))| flows.log_flow([p[0], p[1]], k, c) as f32)
            .collect();
        Some(Tensor::from_data(
            TensorData::new(values, [n]),
            &self.device,
        ))
    }

    fn decode(&self, x0: Tensor<B, 2>) -> Tensor<B, 4> {
        let n = x0.dims()[0];
        x0.reshape([n, 2, 1, 1])
    }
}

/// The toy environment: its model for training and for inference, and the scenes.
pub struct Toy2d<B: AutodiffBackend> {
    config: Toy2dConfig,
    device: B::Device,
    scenes: Vec<GaussianMixture>,
    features: Features,
    train: Toy2dModel<B>,
    infer: Toy2dModel<B::InnerBackend>,
}

impl<B: AutodiffBackend> Toy2d<B> {
    /// # Errors
    /// An unknown scene name (the message lists the known ones), an invalid sampler, or an
    /// instrument (which needs the run's exact solution: [`Toy2d::with_solution`]).
    pub fn new(
        config: Toy2dConfig,
        sampler: SamplerConfig,
        device: B::Device,
    ) -> Result<Self, String> {
        Self::with_solution(config, sampler, device, None)
    }

    /// The toy with its instruments built from the run's exact solution.
    ///
    /// # Errors
    /// As [`Toy2d::new`]; an instrument without a solution, or a solution whose target has no
    /// pre-image (a component narrower than the last step's noise).
    pub fn with_solution(
        config: Toy2dConfig,
        sampler: SamplerConfig,
        device: B::Device,
        solution: Option<&ExactSolution>,
    ) -> Result<Self, String> {
        if config.prompts.is_empty() {
            return Err("env.prompts: the toy needs at least one scene".into());
        }
        let scenes = config
            .prompts
            .iter()
            .map(|p| scenes::scene(p))
            .collect::<Result<Vec<_>, _>>()?;
        let scheduler = Scheduler::new(sampler)?;
        let features = Features {
            time_features: config.time_features,
            num_prompts: scenes.len(),
        };
        let solution = match (config.instrumented(), solution) {
            (false, _) => None,
            (true, Some(s)) => Some(s),
            (true, None) => {
                return Err(
                    "oracle and exact_flows need the run's exact target in closed form, \
                     which the harness derives from the reward and the objective"
                        .into(),
                )
            }
        };
        let oracle = match solution {
            Some(s) if config.oracle => Some(s.pre_images(scheduler.schedule())?),
            _ => None,
        };
        let flows = match solution {
            Some(s) if config.exact_flows => Some(s.flows(&scenes, scheduler.schedule())?),
            _ => None,
        };
        let tables = Tables {
            scenes: &scenes,
            oracle: oracle.as_deref(),
            flows: flows.as_ref(),
        };
        Ok(Self {
            train: Toy2dModel::new(&tables, scheduler.clone(), features.clone(), device.clone()),
            infer: Toy2dModel::new(&tables, scheduler, features.clone(), device.clone()),
            config,
            device,
            scenes,
            features,
        })
    }

    /// The clean mixture a prompt names.
    pub fn scene(&self, prompt: usize) -> &GaussianMixture {
        &self.scenes[prompt]
    }

    /// The exact law of the base sampler's output for a prompt: the scene noised to ᾱ₀, since
    /// SD's schedule stops at timestep 0 (ᾱ₀ = 0.99915), not at clean data.
    pub fn base_distribution(&self, prompt: usize) -> GaussianMixture {
        let s = self.train.scheduler.schedule();
        self.scenes[prompt].noised(s.alpha_bar_of_state(s.num_steps()))
    }
}

impl<B: AutodiffBackend> EnvInfo for Toy2d<B> {
    fn prompts(&self) -> &[String] {
        &self.config.prompts
    }

    fn sample_kind(&self) -> SampleKind {
        SampleKind::Points2d
    }

    fn exact_base(&self, prompt: usize) -> Option<GaussianMixture> {
        Some(self.base_distribution(prompt))
    }
}

impl<B: AutodiffBackend> Environment<B> for Toy2d<B> {
    type Policy = ToyPolicy<B>;

    fn device(&self) -> &B::Device {
        &self.device
    }

    fn init_policy(&self, rng: &mut StdRng) -> ToyPolicy<B> {
        ToyPolicy::new(&self.features, self.config.hidden, rng, &self.device)
    }

    /// A whole prompt per batch: its samples are 2-D points.
    fn eval_batch(&self) -> usize {
        usize::MAX
    }
}

impl<B: AutodiffBackend> DiffusionEnv<B> for Toy2d<B> {
    type StateNet = ToyStateNet<B>;
    type FieldNet = ToyFieldNet<B>;
    type Train = Toy2dModel<B>;
    type Infer = Toy2dModel<B::InnerBackend>;

    fn train(&self) -> &Toy2dModel<B> {
        &self.train
    }

    fn infer(&self) -> &Toy2dModel<B::InnerBackend> {
        &self.infer
    }

    fn init_state_net(&self, rng: &mut StdRng) -> ToyStateNet<B> {
        ToyStateNet::new(&self.features, self.config.hidden, rng, &self.device)
    }

    fn init_field_net(&self, rng: &mut StdRng) -> ToyFieldNet<B> {
        ToyFieldNet::new(&self.features, self.config.hidden, rng, &self.device)
    }
}
