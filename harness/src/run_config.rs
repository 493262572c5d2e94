//! One fully resolved run: what `config.ron` holds and the run id hashes.
//!
//! Every plugin's parameters are stored resolved — every default filled in — so that a default
//! changed in code gives the runs that relied on it a new id instead of letting a finished run
//! under the old settings pass as done.

use ron::value::RawValue;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use bench_core::{Invalid, SampleKind, Validate};
use bench_envs::sd::SdConfig;
use bench_envs::toy2d::Toy2dConfig;
use bench_envs::SamplerConfig;
use bench_rewards::toy::TargetKind;

/// An environment and its configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum EnvConfig {
    /// The exact 2-D mixture toy.
    Toy2d(Toy2dConfig),
    /// Stable Diffusion v1.x from a diffusers folder, with a LoRA policy.
    Sd(SdConfig),
}

impl Validate for EnvConfig {
    fn validate(&self) -> Result<(), Invalid> {
        match self {
            Self::Toy2d(c) => c.validate(),
            Self::Sd(c) => c.validate(),
        }
    }
}

impl EnvConfig {
    /// What the environment's final samples are.
    pub fn sample_kind(&self) -> SampleKind {
        match self {
            Self::Toy2d(_) => SampleKind::Points2d,
            Self::Sd(_) => SampleKind::Images,
        }
    }

    /// The variant's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Toy2d(_) => "Toy2d",
            Self::Sd(_) => "Sd",
        }
    }
}

/// A plugin's parameters as canonical RON text (see [`bench_core::params`]), stored in
/// `config.ron` as RON itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResolvedParams(pub String);

impl Serialize for ResolvedParams {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RawValue::from_ron(&self.0)
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ResolvedParams {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        Ok(Self(raw.get_ron().trim().to_string()))
    }
}

/// A named plugin (algorithm, reward or metric) with its resolved parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub name: String,
    /// Shown in tables instead of the name (to tell apart two settings of one algorithm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub params: ResolvedParams,
}

impl Component {
    pub fn label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.name)
    }
}

/// A target to compare every method with (distribution matchers use their own).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub kind: TargetKind,
    pub beta: f64,
}

/// How and when a run is evaluated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Evaluate every this many epochs (and always after the last).
    pub every: usize,
    /// Samples per prompt at each evaluation.
    pub samples_per_prompt: usize,
    /// Target for methods that have none of their own (reward maximisers).
    pub target: Option<TargetConfig>,
    /// The metrics computed at each evaluation, in order.
    #[serde(default)]
    pub metrics: Vec<Component>,
}

/// One fully resolved run: written as `config.ron` in its directory; its hash is its id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub sweep: String,
    pub env: EnvConfig,
    pub sampler: SamplerConfig,
    pub epochs: usize,
    pub checkpoint_every: usize,
    pub eval: EvalConfig,
    pub seed: u64,
    pub algorithm: Component,
    pub reward: Component,
    /// Labels of the overrides that changed this run.
    #[serde(default)]
    pub variant: Vec<String>,
}
