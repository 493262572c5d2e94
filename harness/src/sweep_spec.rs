//! The top level of a sweep file, parsed with the position of every value kept and checked —
//! names, counts, ranges — before any plugin is looked at: a bad value is refused at its
//! `file:line:col`, and a sweep name can never lead outside the results directory.

use std::collections::BTreeMap;

use ron::value::RawValue;
use serde::Deserialize;

use bench_core::validate::{self, Invalid, Validate};
use bench_core::Source;
use bench_envs::SamplerConfig;

use crate::run_config::{EnvConfig, TargetConfig};

/// The sweep file's top level, each value kept as text until it is parsed with its position.
#[derive(Debug, Deserialize)]
#[serde(rename = "Sweep", deny_unknown_fields)]
pub(crate) struct SweepSpec<'a> {
    #[serde(borrow)]
    name: &'a RawValue,
    #[serde(borrow)]
    env: &'a RawValue,
    #[serde(default, borrow)]
    sampler: Option<&'a RawValue>,
    #[serde(borrow)]
    epochs: &'a RawValue,
    #[serde(default, borrow)]
    checkpoint_every: Option<&'a RawValue>,
    #[serde(default, borrow)]
    keep_checkpoints: Option<&'a RawValue>,
    #[serde(default, borrow)]
    max_epochs: Option<&'a RawValue>,
    #[serde(default, borrow)]
    eval: Option<&'a RawValue>,
    #[serde(default, borrow)]
    seeds: Option<&'a RawValue>,
    #[serde(borrow)]
    pub algorithms: Vec<&'a RawValue>,
    #[serde(borrow)]
    pub rewards: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    overrides: Vec<&'a RawValue>,
}

/// `eval: (...)` as written.
#[derive(Debug, Deserialize)]
#[serde(rename = "EvalConfig", deny_unknown_fields)]
pub(crate) struct EvalSpec<'a> {
    #[serde(default = "default_every")]
    pub every: usize,
    #[serde(default = "default_samples")]
    pub samples_per_prompt: usize,
    #[serde(default)]
    pub target: Option<TargetConfig>,
    /// The metrics; the environment's defaults when absent.
    #[serde(default, borrow)]
    pub metrics: Option<Vec<&'a RawValue>>,
}

fn default_every() -> usize {
    10
}

fn default_samples() -> usize {
    500
}

/// A variant applied to every run of the grid, as written.
#[derive(Debug, Deserialize)]
#[serde(rename = "Override", deny_unknown_fields)]
struct OverrideSpec<'a> {
    label: String,
    #[serde(default)]
    epochs: Option<usize>,
    #[serde(default, borrow)]
    sampler: Option<&'a RawValue>,
    /// Parameter patches by component name: `{"dag_db": (beta: 2.0)}` (or `{"beta": 2.0}`)
    /// replaces those fields of every algorithm, reward or metric of that name.
    #[serde(default, borrow)]
    params: BTreeMap<String, &'a RawValue>,
}

/// An override, parsed and checked; its patches still text.
pub(crate) struct OverrideHeader<'a> {
    pub label: String,
    pub epochs: Option<usize>,
    pub sampler: Option<SamplerConfig>,
    pub params: BTreeMap<String, &'a RawValue>,
}

/// The sweep's top level, parsed and checked.
pub(crate) struct Header<'a> {
    pub name: String,
    pub env: EnvConfig,
    pub sampler: SamplerConfig,
    pub epochs: usize,
    pub checkpoint_every: usize,
    pub keep_checkpoints: usize,
    pub eval: EvalSpec<'a>,
    /// Where `eval` was written (the file's start when it was not).
    pub eval_at: String,
    pub seeds: Vec<u64>,
    pub overrides: Vec<OverrideHeader<'a>>,
}

/// `file:line:col` of `field: …` inside `raw` (a slice of `source`), or of `raw` itself when the
/// field was not written there (a default).
pub(crate) fn field_position(source: &Source, raw: &str, field: &str) -> String {
    let start = source.offset_of(raw) - (raw.len() - raw.trim_start().len());
    let bytes = raw.as_bytes();
    let found = raw.match_indices(field).find(|&(i, _)| {
        let before_ok = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let after = raw[i + field.len()..].trim_start();
        before_ok && after.starts_with(':')
    });
    match found {
        Some((i, _)) => source.locate(start + i),
        None => source.locate(source.offset_of(raw)),
    }
}

/// Parses `raw` as `T` and checks its ranges; errors at the value (or field) at fault.
fn checked<'a, T: Deserialize<'a> + Validate>(
    source: &Source,
    raw: &'a RawValue,
) -> Result<T, String> {
    let value: T = source.parse(raw.get_ron())?;
    value
        .validate()
        .map_err(|e| at_field(source, raw.get_ron(), &e))?;
    Ok(value)
}

fn at_field(source: &Source, raw: &str, invalid: &Invalid) -> String {
    let last = invalid.field.rsplit('.').next().unwrap_or_default();
    format!("{}: {invalid}", field_position(source, raw, last))
}

/// A sweep name is one path component of printable characters: `<results>/<name>/` can never
/// be anywhere else.
fn check_name(name: &str) -> Result<(), String> {
    let why = if name.is_empty() {
        "is empty"
    } else if name == "." || name == ".." {
        "is a relative directory"
    } else if name.contains(['/', '\\']) {
        "contains a path separator"
    } else if name.chars().any(char::is_control) {
        "contains a control character"
    } else if name.len() > 200 {
        "is longer than 200 bytes"
    } else {
        return Ok(());
    };
    Err(format!(
        "name = {name:?} {why}: a sweep's name is one folder name (results go to \
         <results>/<name>/)"
    ))
}

/// Reads and checks the sweep's top level.
///
/// # Errors
/// The first value that does not parse or is out of range, at its position.
pub(crate) fn read<'a>(source: &'a Source, spec: &SweepSpec<'a>) -> Result<Header<'a>, String> {
    let at = |raw: &RawValue| source.locate(source.offset_of(raw.get_ron()));
    let name: String = source.parse(spec.name.get_ron())?;
    check_name(&name).map_err(|e| format!("{}: {e}", at(spec.name)))?;
    let count = |raw: Option<&'a RawValue>, field: &str, default: usize, min: usize| {
        let Some(raw) = raw else {
            return Ok(default);
        };
        let value: usize = source.parse(raw.get_ron())?;
        validate::at_least(field, value, min).map_err(|e| format!("{}: {e}", at(raw)))?;
        Ok::<usize, String>(value)
    };
    let max_epochs = count(spec.max_epochs, "max_epochs", 10_000, 1)?;
    let epochs_in = |value: usize, raw_at: String| {
        validate::count_within("epochs", value, 1, max_epochs)
            .map_err(|e| format!("{raw_at}: {e} (raise `max_epochs` to allow more)"))
    };
    let epochs: usize = source.parse(spec.epochs.get_ron())?;
    epochs_in(epochs, at(spec.epochs))?;
    let eval: EvalSpec = match spec.eval {
        Some(raw) => {
            let eval: EvalSpec = source.parse(raw.get_ron())?;
            let located = |e: Invalid| at_field(source, raw.get_ron(), &e);
            validate::at_least("every", eval.every, 1).map_err(located)?;
            validate::at_least("samples_per_prompt", eval.samples_per_prompt, 1)
                .map_err(located)?;
            if let Some(t) = &eval.target {
                validate::positive("beta", t.beta).map_err(located)?;
            }
            eval
        }
        None => EvalSpec {
            every: default_every(),
            samples_per_prompt: default_samples(),
            target: None,
            metrics: None,
        },
    };
    let seeds: Vec<u64> = match spec.seeds {
        Some(raw) => source.parse(raw.get_ron())?,
        None => vec![0],
    };
    if spec.algorithms.is_empty() || spec.rewards.is_empty() || seeds.is_empty() {
        return Err(format!(
            "{}: a sweep needs at least one algorithm, one reward and one seed",
            source.path.display()
        ));
    }
    let mut overrides = Vec::with_capacity(spec.overrides.len());
    for raw in &spec.overrides {
        let o: OverrideSpec = source.parse(raw.get_ron())?;
        if let Some(e) = o.epochs {
            epochs_in(e, field_position(source, raw.get_ron(), "epochs"))?;
        }
        overrides.push(OverrideHeader {
            label: o.label,
            epochs: o.epochs,
            sampler: o.sampler.map(|s| checked(source, s)).transpose()?,
            params: o.params,
        });
    }
    Ok(Header {
        name,
        env: checked(source, spec.env)?,
        sampler: spec
            .sampler
            .map(|s| checked(source, s))
            .transpose()?
            .unwrap_or_default(),
        epochs,
        checkpoint_every: count(spec.checkpoint_every, "checkpoint_every", 10, 1)?,
        keep_checkpoints: count(spec.keep_checkpoints, "keep_checkpoints", 2, 1)?,
        eval_at: spec.eval.map_or_else(|| source.locate(0), at),
        eval,
        seeds,
        overrides,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_name_is_one_folder_name() {
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "/abs",
            "a/b",
            "a\\b",
            "tab\there",
            "nl\n",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["quickstart", "toy_all v2", "résultats-1"] {
            assert!(check_name(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn a_field_is_found_inside_its_value() {
        let src = Source::new("s.ron", "(a: (lr: 1, xlr: 2), lr: 3)");
        let raw = &src.text[4..src.text.find(')').unwrap() + 1];
        assert_eq!(field_position(&src, raw, "lr"), "s.ron:1:6");
        assert_eq!(field_position(&src, raw, "xlr"), "s.ron:1:13");
        assert_eq!(field_position(&src, raw, "absent"), "s.ron:1:5");
    }
}
