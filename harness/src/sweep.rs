//! Sweep files: what a researcher writes, and its expansion into resolved runs.
//!
//! Plugin parameters are kept as text with their positions until the plugin is known, then
//! parsed by its own parameter type, so that an error in any of them — or in an override's
//! patch — names `file:line:col`, and each run carries its parameters resolved.

use std::collections::BTreeMap;
use std::path::Path;

use ron::value::RawValue;
use serde::Deserialize;

use bench_core::{ParamsCodec, ParamsText, Source};
use bench_envs::SamplerConfig;
use bench_metrics::default_metrics;

use crate::plugins::Plugins;
use crate::run_config::{
    Component, EnvConfig, EvalConfig, ResolvedParams, RunConfig, TargetConfig,
};

fn default_seeds() -> Vec<u64> {
    vec![0]
}

fn default_checkpoint_every() -> usize {
    10
}

fn default_every() -> usize {
    10
}

fn default_samples() -> usize {
    500
}

/// `eval: (...)` as written.
#[derive(Debug, Deserialize)]
#[serde(rename = "EvalConfig", deny_unknown_fields)]
struct EvalSpec<'a> {
    #[serde(default = "default_every")]
    every: usize,
    #[serde(default = "default_samples")]
    samples_per_prompt: usize,
    #[serde(default)]
    target: Option<TargetConfig>,
    /// The metrics; the environment's defaults when absent.
    #[serde(default, borrow)]
    metrics: Option<Vec<&'a RawValue>>,
}

impl Default for EvalSpec<'_> {
    fn default() -> Self {
        Self {
            every: default_every(),
            samples_per_prompt: default_samples(),
            target: None,
            metrics: None,
        }
    }
}

/// A variant applied to every run of the grid, as written.
#[derive(Debug, Deserialize)]
#[serde(rename = "Override", deny_unknown_fields)]
struct OverrideSpec<'a> {
    label: String,
    #[serde(default)]
    epochs: Option<usize>,
    #[serde(default)]
    sampler: Option<SamplerConfig>,
    /// Parameter patches by component name: `{"dag_db": (beta: 2.0)}` (or `{"beta": 2.0}`)
    /// replaces those fields of every algorithm, reward or metric of that name.
    #[serde(default, borrow)]
    params: BTreeMap<String, &'a RawValue>,
}

/// A sweep file as written.
#[derive(Debug, Deserialize)]
#[serde(rename = "Sweep", deny_unknown_fields)]
struct SweepSpec<'a> {
    /// Results go to `<results>/<name>/`.
    name: String,
    env: EnvConfig,
    #[serde(default)]
    sampler: SamplerConfig,
    epochs: usize,
    #[serde(default = "default_checkpoint_every")]
    checkpoint_every: usize,
    #[serde(default, borrow)]
    eval: EvalSpec<'a>,
    #[serde(default = "default_seeds")]
    seeds: Vec<u64>,
    #[serde(borrow)]
    algorithms: Vec<&'a RawValue>,
    #[serde(borrow)]
    rewards: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    overrides: Vec<OverrideSpec<'a>>,
}

/// One component as written: `(name: "...", label: "...", params: (...))`.
#[derive(Debug, Deserialize)]
#[serde(rename = "Component", deny_unknown_fields)]
struct ComponentSpec<'a> {
    name: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
}

/// A component with its parameters as text and where it was written.
#[derive(Clone, Debug)]
struct Written {
    name: String,
    label: Option<String>,
    params: ParamsText,
    /// `file:line:col` of the component.
    at: String,
}

impl Written {
    fn parse(source: &Source, raw: &RawValue) -> Result<Self, String> {
        let spec: ComponentSpec = source.parse(raw.get_ron())?;
        let at = source.offset_of(raw.get_ron());
        Ok(Self {
            params: match spec.params {
                Some(p) => ParamsText::parse(source, p.get_ron())?,
                None => ParamsText::empty(at),
            },
            name: spec.name,
            label: spec.label,
            at: source.locate(at),
        })
    }

    /// Resolved with `patch` (an override's fields for this name), by `codec`; `kind` names
    /// what the component is in messages.
    fn resolve(
        &self,
        kind: &str,
        patch: Option<&ParamsText>,
        codec: &ParamsCodec,
        source: &Source,
    ) -> Result<Component, String> {
        let mut params = self.params.clone();
        if let Some(p) = patch {
            params.patch(p);
        }
        let resolved = codec
            .resolve(&params, source)
            .map_err(|e| format!("{e} (parameters of {kind} `{}`)", self.name))?;
        Ok(Component {
            name: self.name.clone(),
            label: self.label.clone(),
            params: ResolvedParams(resolved),
        })
    }
}

/// An override with its patches parsed.
struct Override {
    label: String,
    epochs: Option<usize>,
    sampler: Option<SamplerConfig>,
    patches: BTreeMap<String, ParamsText>,
}

/// A run of a sweep, and where its components were written (for messages found later).
#[derive(Clone, Debug)]
pub struct PlannedRun {
    pub config: RunConfig,
    pub algorithm_at: String,
    pub reward_at: String,
    /// One position per metric of `config.eval.metrics`.
    pub metrics_at: Vec<String>,
}

/// A parsed sweep: its name and runs, every parameter resolved.
#[derive(Clone, Debug)]
pub struct Sweep {
    pub name: String,
    pub runs: Vec<PlannedRun>,
}

/// Reads, parses and expands a sweep file; nothing is written.
///
/// # Errors
/// A missing file, a parse error, an unknown plugin or field, or a bad value, as
/// `file:line:column: message`.
pub fn load(path: &Path, plugins: &Plugins) -> Result<Sweep, String> {
    let source =
        Source::read(path).map_err(|e| e.replace("cannot read", "cannot read sweep file"))?;
    let spec: SweepSpec = source.parse_all()?;
    let whole = path.display();
    if spec.algorithms.is_empty() || spec.rewards.is_empty() || spec.seeds.is_empty() {
        return Err(format!(
            "{whole}: a sweep needs at least one algorithm, one reward and one seed"
        ));
    }
    if spec.epochs == 0 || spec.checkpoint_every == 0 || spec.eval.every == 0 {
        return Err(format!(
            "{whole}: epochs, checkpoint_every and eval.every must be positive"
        ));
    }
    let parse_all = |raws: &[&RawValue]| -> Result<Vec<Written>, String> {
        raws.iter().map(|r| Written::parse(&source, r)).collect()
    };
    let algorithms = parse_all(&spec.algorithms)?;
    let rewards = parse_all(&spec.rewards)?;
    let metrics = match &spec.eval.metrics {
        Some(raws) => parse_all(raws)?,
        None => default_metric_components(&spec.env, &source),
    };
    let mut overrides = vec![];
    for o in &spec.overrides {
        let mut patches = BTreeMap::new();
        for (name, raw) in &o.params {
            let known = algorithms.iter().chain(&rewards).chain(&metrics);
            if !known.clone().any(|c| &c.name == name) {
                return Err(format!(
                    "{}: override `{}` patches `{name}`, which is none of this sweep's \
                     algorithms, rewards or metrics ({})",
                    source.locate(source.offset_of(raw.get_ron())),
                    o.label,
                    known
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            patches.insert(name.clone(), ParamsText::parse(&source, raw.get_ron())?);
        }
        overrides.push(Override {
            label: o.label.clone(),
            epochs: o.epochs,
            sampler: o.sampler.clone(),
            patches,
        });
    }
    let none = Override {
        label: String::new(),
        epochs: None,
        sampler: None,
        patches: BTreeMap::new(),
    };
    let variants: Vec<&Override> = if overrides.is_empty() {
        vec![&none]
    } else {
        overrides.iter().collect()
    };

    let resolve_metrics = |o: &Override| -> Result<Vec<Component>, String> {
        metrics
            .iter()
            .map(|m| {
                let entry = plugins
                    .metrics
                    .get(&m.name)
                    .map_err(|e| format!("{}: {e}", m.at))?;
                m.resolve("metric", o.patches.get(&m.name), &entry.params, &source)
            })
            .collect()
    };
    let mut runs: Vec<PlannedRun> = Vec::new();
    for a in &algorithms {
        let a_codec = &plugins
            .objectives
            .get(&a.name)
            .map_err(|e| format!("{}: {e}", a.at))?
            .params;
        for r in &rewards {
            let r_codec = &plugins
                .rewards
                .get(&r.name)
                .map_err(|e| format!("{}: {e}", r.at))?
                .params;
            let base_metrics = resolve_metrics(&none)?;
            let base_algorithm = a.resolve("algorithm", None, a_codec, &source)?;
            let base_reward = r.resolve("reward", None, r_codec, &source)?;
            for o in &variants {
                let algorithm = a.resolve("algorithm", o.patches.get(&a.name), a_codec, &source)?;
                let reward = r.resolve("reward", o.patches.get(&r.name), r_codec, &source)?;
                let metrics = resolve_metrics(o)?;
                let sampler = o.sampler.clone().unwrap_or_else(|| spec.sampler.clone());
                let epochs = o.epochs.unwrap_or(spec.epochs);
                let changed = sampler != spec.sampler
                    || epochs != spec.epochs
                    || algorithm != base_algorithm
                    || reward != base_reward
                    || metrics != base_metrics;
                for &seed in &spec.seeds {
                    let config = RunConfig {
                        sweep: spec.name.clone(),
                        env: spec.env.clone(),
                        sampler: sampler.clone(),
                        epochs,
                        checkpoint_every: spec.checkpoint_every,
                        eval: EvalConfig {
                            every: spec.eval.every,
                            samples_per_prompt: spec.eval.samples_per_prompt,
                            target: spec.eval.target.clone(),
                            metrics: metrics.clone(),
                        },
                        seed,
                        algorithm: algorithm.clone(),
                        reward: reward.clone(),
                        variant: if changed {
                            vec![o.label.clone()]
                        } else {
                            vec![]
                        },
                    };
                    // An override that changes nothing of a run yields that run once.
                    if !runs.iter().any(|p| same_run(&p.config, &config)) {
                        runs.push(PlannedRun {
                            config,
                            algorithm_at: a.at.clone(),
                            reward_at: r.at.clone(),
                            metrics_at: metrics_positions(&metrics, &spec.eval.metrics, &source),
                        });
                    }
                }
            }
        }
    }
    Ok(Sweep {
        name: spec.name,
        runs,
    })
}

/// Two runs that train and evaluate the same way, whatever their variant labels.
fn same_run(a: &RunConfig, b: &RunConfig) -> bool {
    RunConfig {
        variant: vec![],
        ..a.clone()
    } == RunConfig {
        variant: vec![],
        ..b.clone()
    }
}

/// The environment's default metrics as written components.
fn default_metric_components(env: &EnvConfig, source: &Source) -> Vec<Written> {
    let at = source.locate(0);
    default_metrics(env.sample_kind())
        .into_iter()
        .map(|(name, params)| {
            let text = Source::new("default metrics", params);
            Written {
                name: name.to_string(),
                label: None,
                params: ParamsText::parse(&text, &text.text).expect("default metric parameters"),
                at: at.clone(),
            }
        })
        .collect()
}

/// Where each metric was written (the sweep file itself for the defaults).
fn metrics_positions(
    metrics: &[Component],
    written: &Option<Vec<&RawValue>>,
    source: &Source,
) -> Vec<String> {
    match written {
        Some(raws) => raws
            .iter()
            .map(|r| source.locate(source.offset_of(r.get_ron())))
            .collect(),
        None => vec![format!("{} (default metrics)", source.path.display()); metrics.len()],
    }
}
