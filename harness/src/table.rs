//! `bench table`: each group of runs that differ only by seed, its evaluation aggregated over
//! seeds (mean ± sample std), as Markdown, CSV or LaTeX.
//!
//! Runs are grouped by their whole resolved configuration without the seed — never by labels —
//! so that the runs of two sweeps, or of an edited sweep left in the same folder, are never
//! averaged together: groups that would read alike are told apart by what differs. A group says
//! which epochs its values come from, how many seeds each value averages, and which seeds
//! diverged; non-finite values are never averaged in. Runs that cannot be read are reported.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use bench_core::params::{canonical, fields_of};
use bench_core::stats::{mean, sample_std};

use crate::divergence::Divergence;
use crate::run_config::RunConfig;
use crate::store::CsvLog;

/// What a finished run left to tabulate.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Its evaluation after `epoch` epochs.
    Evaluated {
        epoch: usize,
        metrics: BTreeMap<String, f64>,
    },
    /// It stopped on a non-finite quantity.
    Diverged(Divergence),
}

/// One finished run.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub dir: PathBuf,
    pub config: RunConfig,
    pub outcome: Outcome,
}

impl RunResult {
    /// The evaluation's metrics (none for a diverged run).
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        match &self.outcome {
            Outcome::Evaluated { metrics, .. } => metrics.clone(),
            Outcome::Diverged(_) => BTreeMap::new(),
        }
    }
}

/// The finished runs below a folder and what could not be read.
#[derive(Clone, Debug, Default)]
pub struct Collected {
    pub runs: Vec<RunResult>,
    /// One line per run that is finished but unreadable, or lacks the asked evaluation.
    pub problems: Vec<String>,
    /// Runs not finished yet (not tabulated).
    pub unfinished: usize,
}

/// Metrics shown first, in this order, with their column titles; others follow by name.
const KNOWN: &[(&str, &str)] = &[
    ("reward", "reward"),
    ("mmd2", "MMD² to target"),
    ("modes_covered", "modes covered"),
    ("modes_total", "target modes"),
    ("mode_tv", "mode TV"),
    ("diversity", "diversity"),
    // `target_shape` (opt-in), with its default bandwidths.
    ("mmd2_bw0.05", "MMD² h=0.05"),
    ("mmd2_bw0.1", "MMD² h=0.1"),
    ("mmd2_bw0.2", "MMD² h=0.2"),
    ("mmd2_bw0.5", "MMD² h=0.5"),
    ("mean_err", "mean error"),
    ("cov_err", "cov. error"),
    ("spread", "spread"),
    ("clumping", "clumping"),
];

/// Finished runs below `dir` (a sweep folder or a results root), each with its evaluation after
/// `at` epochs (default: its last).
///
/// # Errors
/// A folder that does not exist.
pub fn collect(dir: &Path, at: Option<usize>) -> Result<Collected, String> {
    if !dir.is_dir() {
        return Err(format!("no results directory at {}", dir.display()));
    }
    let mut found = Collected::default();
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        let (done, diverged) = (d.join("DONE").is_file(), d.join("DIVERGED").is_file());
        if done || diverged {
            match read_run(&d, at, diverged) {
                Ok(r) => found.runs.push(r),
                Err(e) => found.problems.push(format!("{}: {e}", d.display())),
            }
            continue;
        }
        if d.join("config.ron").is_file() {
            found.unfinished += 1;
            continue;
        }
        if depth < 3 {
            if let Ok(entries) = std::fs::read_dir(&d) {
                stack.extend(
                    entries
                        .filter_map(Result::ok)
                        .filter(|e| e.path().is_dir())
                        .map(|e| (e.path(), depth + 1)),
                );
            }
        }
    }
    found.runs.sort_by(|a, b| a.dir.cmp(&b.dir));
    found.problems.sort();
    Ok(found)
}

/// A finished run's evaluation after `at` epochs (0: the untrained policy), or its last.
fn read_run(dir: &Path, at: Option<usize>, diverged: bool) -> Result<RunResult, String> {
    let text = std::fs::read_to_string(dir.join("config.ron"))
        .map_err(|e| format!("config.ron is missing or unreadable ({e})"))?;
    let config: RunConfig = bench_core::source::ron_options()
        .from_str(&text)
        .map_err(|e| format!("config.ron does not parse ({e})"))?;
    if diverged {
        let marker = std::fs::read_to_string(dir.join("DIVERGED")).unwrap_or_default();
        let d = Divergence::parse(&marker).ok_or("DIVERGED is unreadable")?;
        return Ok(RunResult {
            dir: dir.to_path_buf(),
            config,
            outcome: Outcome::Diverged(d),
        });
    }
    let path = dir.join("eval.csv");
    if !path.is_file() {
        return Err("eval.csv is missing".into());
    }
    let eval = CsvLog::read_before(&path, usize::MAX);
    let epochs: BTreeSet<usize> = eval
        .rows
        .iter()
        .filter_map(|r| r.first()?.parse().ok())
        .collect();
    let epoch = match at {
        Some(e) if epochs.contains(&e) => e,
        Some(e) => {
            return Err(format!(
                "no evaluation after epoch {e}; evaluated after epochs {}",
                epochs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
        None => {
            let last = *epochs.last().ok_or("eval.csv holds no evaluation")?;
            // A finished run evaluates after its last epoch: anything else is a cut or edited
            // file, whose last rows would be averaged with other seeds' final ones.
            if last != config.epochs {
                return Err(format!(
                    "eval.csv ends with the evaluation after epoch {last}, but the run finished \
                     {} epochs (a truncated or edited file)",
                    config.epochs
                ));
            }
            last
        }
    };
    let metrics = epoch_metrics(&eval.rows, epoch)?;
    Ok(RunResult {
        dir: dir.to_path_buf(),
        config,
        outcome: Outcome::Evaluated { epoch, metrics },
    })
}

/// The metrics of one evaluation. Evaluation writes finite values only (a non-finite one marks
/// the run diverged) and each metric once (an epoch-0 evaluation repeated by a resume of an
/// older version gives the same values): anything else is a damaged file, refused by name.
fn epoch_metrics(rows: &[Vec<String>], epoch: usize) -> Result<BTreeMap<String, f64>, String> {
    let mut metrics = BTreeMap::new();
    for r in rows {
        if r.first().and_then(|e| e.parse().ok()) != Some(epoch) {
            continue;
        }
        let [_, name, value, ..] = r.as_slice() else {
            return Err(format!("eval.csv: a short row at epoch {epoch}: {r:?}"));
        };
        let v: f64 = value
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| {
                format!("eval.csv: {name} = {value:?} at epoch {epoch} is not a finite number")
            })?;
        if let Some(old) = metrics.insert(name.clone(), v) {
            if old != v {
                return Err(format!(
                    "eval.csv: {name} has two values at epoch {epoch} ({old} and {v})"
                ));
            }
        }
    }
    Ok(metrics)
}

/// One metric over a group's seeds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stat {
    pub mean: f64,
    /// Sample standard deviation.
    pub std: f64,
    /// How many seeds it averages (finite values only).
    pub n: usize,
}

/// One row of the table: runs that differ only by seed.
#[derive(Clone, Debug)]
pub struct Row {
    pub algorithm: String,
    pub reward: String,
    /// Seeds evaluated (diverged ones excluded).
    pub seeds: usize,
    /// Seeds that diverged, with where.
    pub diverged: Vec<(u64, Divergence)>,
    /// The epochs the evaluations come from.
    pub epochs: BTreeSet<usize>,
    pub stats: BTreeMap<String, Stat>,
}

/// A run's configuration as `key → value` text, seed left out: what tells groups apart.
fn fingerprint(c: &RunConfig) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut put = |key: &str, text: String| {
        let fields = fields_of(&text);
        if fields.is_empty() {
            out.insert(key.to_string(), text);
        } else {
            for (k, v) in fields {
                out.insert(format!("{key}.{k}"), v);
            }
        }
    };
    put("sweep", format!("{:?}", c.sweep));
    put("env", canonical(&c.env));
    put("sampler", canonical(&c.sampler));
    put("epochs", c.epochs.to_string());
    put("checkpoint_every", c.checkpoint_every.to_string());
    put("eval", canonical(&c.eval));
    put("algorithm", format!("{:?}", c.algorithm.name));
    put("algorithm.params", c.algorithm.params.0.clone());
    put("reward", format!("{:?}", c.reward.name));
    put("reward.params", c.reward.params.0.clone());
    out
}

/// Groups runs by their configuration without the seed and aggregates each metric.
pub fn aggregate(results: &[RunResult]) -> Vec<Row> {
    let mut groups: BTreeMap<String, Vec<&RunResult>> = BTreeMap::new();
    for r in results {
        let key = crate::run_id::canonical(&RunConfig {
            seed: 0,
            variant: vec![],
            ..r.config.clone()
        });
        groups.entry(key).or_default().push(r);
    }
    let labelled: Vec<((String, String), Vec<&RunResult>)> = groups
        .into_values()
        .map(|runs| {
            let c = &runs[0].config;
            let mut algorithm = c.algorithm.label().to_string();
            for v in &c.variant {
                algorithm.push_str(&format!(" [{v}]"));
            }
            ((c.reward.label().to_string(), algorithm), runs)
        })
        .collect();
    let mut rows: Vec<Row> = Vec::with_capacity(labelled.len());
    for ((reward, algorithm), runs) in &labelled {
        let twins: Vec<&Vec<&RunResult>> = labelled
            .iter()
            .filter(|((r, a), _)| r == reward && a == algorithm)
            .map(|(_, runs)| runs)
            .collect();
        let algorithm = if twins.len() > 1 {
            format!("{algorithm} ({})", what_differs(&runs[0].config, &twins))
        } else {
            algorithm.clone()
        };
        rows.push(row(reward.clone(), algorithm, runs));
    }
    rows.sort_by(|a, b| (&a.reward, &a.algorithm).cmp(&(&b.reward, &b.algorithm)));
    rows
}

/// This group's values of the settings on which groups that read alike differ.
fn what_differs(config: &RunConfig, twins: &[&Vec<&RunResult>]) -> String {
    let prints: Vec<BTreeMap<String, String>> = twins
        .iter()
        .map(|runs| fingerprint(&runs[0].config))
        .collect();
    let own = fingerprint(config);
    let differing: Vec<&String> = own
        .keys()
        .filter(|k| prints.iter().any(|p| p.get(*k) != own.get(*k)))
        .collect();
    let mut parts: Vec<String> = differing
        .iter()
        .take(3)
        .map(|k| format!("{k}: {}", own[*k]))
        .collect();
    if differing.len() > 3 {
        parts.push(format!("… {} more", differing.len() - 3));
    }
    parts.join(", ")
}

fn row(reward: String, algorithm: String, runs: &[&RunResult]) -> Row {
    let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut epochs = BTreeSet::new();
    let mut diverged = Vec::new();
    let mut seeds = 0;
    for r in runs {
        match &r.outcome {
            Outcome::Evaluated { epoch, metrics } => {
                seeds += 1;
                epochs.insert(*epoch);
                for (k, v) in metrics {
                    let entry = values.entry(k.clone()).or_default();
                    if v.is_finite() {
                        entry.push(*v);
                    }
                }
            }
            Outcome::Diverged(d) => diverged.push((r.config.seed, d.clone())),
        }
    }
    let stats = values
        .into_iter()
        .map(|(k, v)| {
            let stat = Stat {
                mean: if v.is_empty() { f64::NAN } else { mean(&v) },
                std: sample_std(&v),
                n: v.len(),
            };
            (k, stat)
        })
        .collect();
    Row {
        algorithm,
        reward,
        seeds,
        diverged,
        epochs,
        stats,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Markdown,
    Csv,
    Latex,
}

fn columns(rows: &[Row]) -> Vec<(String, String)> {
    let mut present: Vec<String> = rows.iter().flat_map(|r| r.stats.keys().cloned()).collect();
    present.sort();
    present.dedup();
    let mut cols: Vec<(String, String)> = KNOWN
        .iter()
        .filter(|(k, _)| present.iter().any(|p| p == k))
        .map(|(k, t)| (k.to_string(), t.to_string()))
        .collect();
    for p in present {
        if !KNOWN.iter().any(|(k, _)| *k == p) {
            cols.push((p.clone(), p));
        }
    }
    cols
}

impl Row {
    /// The seeds column: how many were averaged, and how many diverged.
    fn seeds_cell(&self) -> String {
        match self.diverged.len() {
            0 => self.seeds.to_string(),
            d => format!("{} ({d} diverged)", self.seeds),
        }
    }

    /// The epochs the values come from ("60", or "2, 60" when the seeds differ).
    fn epoch_cell(&self) -> String {
        if self.epochs.is_empty() {
            return "–".into();
        }
        self.epochs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn cell(&self, key: &str, pm: &str) -> String {
        match self.stats.get(key) {
            None if self.seeds == 0 => "diverged".into(),
            None => "–".into(),
            Some(s) if s.n == 0 => "n/a".into(),
            Some(s) => {
                // Three decimals (four for MMD²), or three significant digits of a mean below
                // 0.01 (image diversities are ~1e-3), which three decimals would flatten; means
                // below 1e-8 are round-off of 0 and print as such.
                let least = if key.starts_with("mmd2") { 4 } else { 3 };
                let magnitude = s.mean.abs().log10().floor();
                let digits = if (-8.0..=-3.0).contains(&magnitude) {
                    least.max((2.0 - magnitude) as usize)
                } else {
                    least
                };
                let mut text = format!("{:.*} {pm} {:.*}", digits, s.mean, digits, s.std);
                if s.n < self.seeds {
                    text.push_str(&format!(" (n={})", s.n));
                }
                text
            }
        }
    }
}

/// Renders the table.
pub fn render(rows: &[Row], format: Format) -> String {
    let cols = columns(rows);
    match format {
        Format::Markdown => {
            let mut out = format!(
                "| reward fn | algorithm | seeds | epoch | {} |\n|---|---|---|---|{}\n",
                cols.iter()
                    .map(|c| c.1.as_str())
                    .collect::<Vec<_>>()
                    .join(" | "),
                "---|".repeat(cols.len())
            );
            for r in rows {
                out.push_str(&format!(
                    "| {} | {} | {} | {} | {} |\n",
                    r.reward,
                    r.algorithm,
                    r.seeds_cell(),
                    r.epoch_cell(),
                    cols.iter()
                        .map(|c| r.cell(&c.0, "±"))
                        .collect::<Vec<_>>()
                        .join(" | ")
                ));
            }
            out
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let mut header: Vec<String> = ["reward_fn", "algorithm", "seeds", "diverged", "epoch"]
                .iter()
                .map(ToString::to_string)
                .collect();
            for c in &cols {
                header.extend([
                    format!("{}_mean", c.0),
                    format!("{}_std", c.0),
                    format!("{}_n", c.0),
                ]);
            }
            w.write_record(&header).expect("in-memory CSV");
            for r in rows {
                let mut rec = vec![
                    r.reward.clone(),
                    r.algorithm.clone(),
                    r.seeds.to_string(),
                    r.diverged.len().to_string(),
                    r.epoch_cell(),
                ];
                for c in &cols {
                    match r.stats.get(&c.0) {
                        Some(s) => {
                            rec.extend([s.mean.to_string(), s.std.to_string(), s.n.to_string()])
                        }
                        None => rec.extend(["".into(), "".into(), "0".into()]),
                    }
                }
                w.write_record(&rec).expect("in-memory CSV");
            }
            String::from_utf8(w.into_inner().expect("in-memory CSV")).expect("UTF-8")
        }
        Format::Latex => {
            let esc = |s: &str| {
                s.replace('_', "\\_")
                    .replace('²', "$^2$")
                    .replace('&', "\\&")
            };
            let mut out = format!(
                "\\begin{{tabular}}{{ll rr{}}}\n\\toprule\nReward & Algorithm & Seeds & Epoch & {} \\\\\n\\midrule\n",
                "c".repeat(cols.len()),
                cols.iter().map(|c| esc(&c.1)).collect::<Vec<_>>().join(" & ")
            );
            for r in rows {
                out.push_str(&format!(
                    "{} & {} & {} & {} & {} \\\\\n",
                    esc(&r.reward),
                    esc(&r.algorithm),
                    esc(&r.seeds_cell()),
                    r.epoch_cell(),
                    cols.iter()
                        .map(|c| r.cell(&c.0, "$\\pm$"))
                        .collect::<Vec<_>>()
                        .join(" & ")
                ));
            }
            out.push_str("\\bottomrule\n\\end{tabular}\n");
            out
        }
    }
}

/// Lines for stderr about what the table leaves out.
pub fn notes(found: &Collected) -> Vec<String> {
    let mut notes: Vec<String> = found
        .problems
        .iter()
        .map(|p| format!("warning: not tabulated: {p}"))
        .collect();
    if found.unfinished > 0 {
        notes.push(format!(
            "note: {} run(s) not finished yet are not tabulated",
            found.unfinished
        ));
    }
    notes
}
