//! Sweep files: what a researcher writes, and its expansion into runs.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

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

/// A named plugin (algorithm or reward) with its parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub name: String,
    /// Shown in tables instead of the name (to tell apart two settings of one algorithm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The component's own fields; missing ones take its documented defaults.
    #[serde(default = "unit")]
    pub params: ron::Value,
}

fn unit() -> ron::Value {
    ron::Value::Unit
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalConfig {
    /// Evaluate every this many epochs (and always after the last).
    pub every: usize,
    /// Samples per prompt for reward, MMD, modes and diversity.
    pub samples_per_prompt: usize,
    /// Target for methods that have none of their own (reward maximisers).
    pub target: Option<TargetConfig>,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            every: 10,
            samples_per_prompt: 500,
            target: None,
        }
    }
}

/// A variant applied to every run of the grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    pub label: String,
    #[serde(default)]
    pub epochs: Option<usize>,
    #[serde(default)]
    pub sampler: Option<SamplerConfig>,
    /// Parameter patches by component name: `{"dag_db": {"beta": 2.0}}` merges into the
    /// params of every algorithm or reward of that name.
    #[serde(default)]
    pub params: BTreeMap<String, BTreeMap<String, ron::Value>>,
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}

fn default_checkpoint_every() -> usize {
    10
}

/// A sweep file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// Results go to `<results>/<name>/`.
    pub name: String,
    pub env: EnvConfig,
    #[serde(default)]
    pub sampler: SamplerConfig,
    pub epochs: usize,
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: usize,
    #[serde(default)]
    pub eval: EvalConfig,
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    pub algorithms: Vec<Component>,
    pub rewards: Vec<Component>,
    #[serde(default)]
    pub overrides: Vec<Override>,
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

/// Reads and parses a sweep file.
///
/// # Errors
/// A missing file (with its path) or a parse error as `file:line:column: message`.
pub fn load(path: &Path) -> Result<Sweep, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read sweep file {}: {e}", path.display()))?;
    // Implicit `Some`: optional fields are written as plain values (`label: "x"`).
    let options =
        ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    let sweep: Sweep = options.from_str(&text).map_err(|e| {
        format!(
            "{}:{}:{}: {}",
            path.display(),
            e.position.line,
            e.position.col,
            e.code
        )
    })?;
    if sweep.algorithms.is_empty() || sweep.rewards.is_empty() || sweep.seeds.is_empty() {
        return Err(format!(
            "{}: a sweep needs at least one algorithm, one reward and one seed",
            path.display()
        ));
    }
    if sweep.epochs == 0 || sweep.checkpoint_every == 0 || sweep.eval.every == 0 {
        return Err(format!(
            "{}: epochs, checkpoint_every and eval.every must be positive",
            path.display()
        ));
    }
    Ok(sweep)
}

/// `file:line:column` of the first occurrence of `"name"` in the file, for messages about
/// names that parse but mean nothing.
pub fn locate(path: &Path, name: &str) -> String {
    let needle = format!("\"{name}\"");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    for (i, line) in text.lines().enumerate() {
        if let Some(col) = line.find(&needle) {
            return format!("{}:{}:{}", path.display(), i + 1, col + 1);
        }
    }
    path.display().to_string()
}

fn merge(params: &ron::Value, patch: &BTreeMap<String, ron::Value>) -> ron::Value {
    let mut map = match params {
        ron::Value::Map(m) => m.clone(),
        _ => ron::Map::new(),
    };
    for (k, v) in patch {
        map.insert(ron::Value::String(k.clone()), v.clone());
    }
    ron::Value::Map(map)
}

fn patched(component: &Component, o: &Override) -> Component {
    match o.params.get(&component.name) {
        Some(patch) => Component {
            params: merge(&component.params, patch),
            ..component.clone()
        },
        None => component.clone(),
    }
}

impl Sweep {
    /// The grid algorithm × reward × seed × override, without duplicates (an override that
    /// changes nothing of a run yields that run once).
    pub fn expand(&self) -> Vec<RunConfig> {
        let mut runs: Vec<RunConfig> = Vec::new();
        let none = Override {
            label: String::new(),
            epochs: None,
            sampler: None,
            params: BTreeMap::new(),
        };
        let overrides: Vec<&Override> = if self.overrides.is_empty() {
            vec![&none]
        } else {
            self.overrides.iter().collect()
        };
        for algorithm in &self.algorithms {
            for reward in &self.rewards {
                for o in &overrides {
                    for &seed in &self.seeds {
                        let mut run = RunConfig {
                            sweep: self.name.clone(),
                            env: self.env.clone(),
                            sampler: o.sampler.clone().unwrap_or_else(|| self.sampler.clone()),
                            epochs: o.epochs.unwrap_or(self.epochs),
                            checkpoint_every: self.checkpoint_every,
                            eval: self.eval.clone(),
                            seed,
                            algorithm: patched(algorithm, o),
                            reward: patched(reward, o),
                            variant: vec![],
                        };
                        let base = RunConfig {
                            sampler: self.sampler.clone(),
                            epochs: self.epochs,
                            algorithm: algorithm.clone(),
                            reward: reward.clone(),
                            ..run.clone()
                        };
                        if run != base {
                            run.variant.push(o.label.clone());
                        }
                        if !runs.contains(&run) {
                            runs.push(run);
                        }
                    }
                }
            }
        }
        runs
    }
}
