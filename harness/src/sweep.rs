//! Sweep files: what a researcher writes, and its expansion into resolved runs.
//!
//! Plugin parameters are kept as text with their positions until the plugin is known, then
//! parsed by its own parameter type, so that an error in any of them — or in an override's
//! patch — names `file:line:col`, and each run carries its parameters resolved.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ron::value::RawValue;
use serde::Deserialize;

use bench_core::{ParamsCodec, ParamsText, Source};
use bench_envs::SamplerConfig;
use bench_metrics::default_metrics;

use crate::plugins::Plugins;
use crate::run_config::{Component, EnvConfig, EvalConfig, ResolvedParams, RunConfig};
use crate::sweep_spec::{self, SweepSpec};

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
    /// Checkpoints kept (not part of the run's identity: it does not change its results).
    pub keep_checkpoints: usize,
    /// The sweep file's folder: relative paths in the run's config (models, prompt files) are
    /// relative to it.
    pub base_dir: PathBuf,
    /// Where `eval` was written.
    pub eval_at: String,
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
    let plugins = plugins.catalog();
    let source =
        Source::read(path).map_err(|e| e.replace("cannot read", "cannot read sweep file"))?;
    let spec: SweepSpec = source.parse_all()?;
    let header = sweep_spec::read(&source, &spec)?;
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let parse_all = |raws: &[&RawValue]| -> Result<Vec<Written>, String> {
        raws.iter().map(|r| Written::parse(&source, r)).collect()
    };
    let algorithms = parse_all(&spec.algorithms)?;
    let rewards = parse_all(&spec.rewards)?;
    let metrics = match &header.eval.metrics {
        Some(raws) => parse_all(raws)?,
        None => default_metric_components(&header.env, &source),
    };
    let mut overrides = vec![];
    for o in &header.overrides {
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
                let sampler = o.sampler.clone().unwrap_or_else(|| header.sampler.clone());
                let epochs = o.epochs.unwrap_or(header.epochs);
                let changed = sampler != header.sampler
                    || epochs != header.epochs
                    || algorithm != base_algorithm
                    || reward != base_reward
                    || metrics != base_metrics;
                for &seed in &header.seeds {
                    let config = RunConfig {
                        sweep: header.name.clone(),
                        env: header.env.clone(),
                        sampler: sampler.clone(),
                        epochs,
                        checkpoint_every: header.checkpoint_every,
                        eval: EvalConfig {
                            every: header.eval.every,
                            samples_per_prompt: header.eval.samples_per_prompt,
                            target: header.eval.target.clone(),
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
                            keep_checkpoints: header.keep_checkpoints,
                            base_dir: base_dir.clone(),
                            eval_at: header.eval_at.clone(),
                            algorithm_at: a.at.clone(),
                            reward_at: r.at.clone(),
                            metrics_at: metrics_positions(
                                &metrics,
                                &header.eval.metrics,
                                &source,
                                &header.eval_at,
                            ),
                        });
                    }
                }
            }
        }
    }
    Ok(Sweep {
        name: header.name,
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

/// Where each metric was written (for the defaults, where `eval` was: their settings are its).
fn metrics_positions(
    metrics: &[Component],
    written: &Option<Vec<&RawValue>>,
    source: &Source,
    eval_at: &str,
) -> Vec<String> {
    match written {
        Some(raws) => raws
            .iter()
            .map(|r| source.locate(source.offset_of(r.get_ron())))
            .collect(),
        None => vec![format!("{eval_at} (default metrics)"); metrics.len()],
    }
}
