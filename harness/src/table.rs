//! `bench table`: mean ± std over seeds of each run's final evaluation, per
//! (algorithm, reward), as Markdown, CSV or LaTeX.

use std::collections::BTreeMap;
use std::path::Path;

use crate::run_config::RunConfig;
use crate::store::CsvLog;

/// One finished run's final evaluation.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub config: RunConfig,
    pub metrics: BTreeMap<String, f64>,
}

/// Metrics shown first, in this order, with their column titles; others follow by name.
const KNOWN: &[(&str, &str)] = &[
    ("reward", "reward"),
    ("mmd2", "MMD² to target"),
    ("modes_covered", "modes covered"),
    ("modes_total", "target modes"),
    ("mode_tv", "mode TV"),
    ("diversity", "diversity"),
];

/// Finished runs below `dir` (a sweep directory or a results root), with their evaluation
/// after `at` epochs (default: the last).
///
/// # Errors
/// A directory that does not exist.
pub fn collect(dir: &Path, at: Option<usize>) -> Result<Vec<RunResult>, String> {
    if !dir.is_dir() {
        return Err(format!("no results directory at {}", dir.display()));
    }
    let mut results = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        if d.join("config.ron").is_file() {
            if d.join("DONE").is_file() {
                if let Some(r) = read_run(&d, at) {
                    results.push(r);
                }
            }
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
    Ok(results)
}

/// The evaluation after `at` epochs (0: the untrained policy), or the last one.
fn read_run(dir: &Path, at: Option<usize>) -> Option<RunResult> {
    let config: RunConfig =
        ron::from_str(&std::fs::read_to_string(dir.join("config.ron")).ok()?).ok()?;
    let eval = CsvLog::read_before(&dir.join("eval.csv"), usize::MAX);
    let epochs = eval.rows.iter().filter_map(|r| r[0].parse::<usize>().ok());
    let last = match at {
        Some(e) => epochs.filter(|&x| x == e).max()?,
        None => epochs.max()?,
    };
    let metrics = eval
        .rows
        .iter()
        .filter(|r| r[0].parse::<usize>().ok() == Some(last))
        .filter_map(|r| Some((r[1].clone(), r[2].parse().ok()?)))
        .collect();
    Some(RunResult { config, metrics })
}

/// One row of the table: a group of seeds.
#[derive(Clone, Debug)]
pub struct Row {
    pub algorithm: String,
    pub reward: String,
    pub seeds: usize,
    /// metric → (mean, sample std).
    pub stats: BTreeMap<String, (f64, f64)>,
}

fn group_label(c: &RunConfig) -> String {
    let mut s = c.algorithm.label().to_string();
    for v in &c.variant {
        s.push_str(&format!(" [{v}]"));
    }
    s
}

/// Groups runs by (algorithm, reward) and aggregates each metric over seeds.
pub fn aggregate(results: &[RunResult]) -> Vec<Row> {
    let mut groups: BTreeMap<(String, String), Vec<&RunResult>> = BTreeMap::new();
    for r in results {
        groups
            .entry((r.config.reward.label().to_string(), group_label(&r.config)))
            .or_default()
            .push(r);
    }
    groups
        .into_iter()
        .map(|((reward, algorithm), runs)| {
            let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for r in &runs {
                for (k, v) in &r.metrics {
                    values.entry(k.clone()).or_default().push(*v);
                }
            }
            let stats = values
                .into_iter()
                .map(|(k, v)| {
                    let n = v.len() as f64;
                    let mean = v.iter().sum::<f64>() / n;
                    let var = if v.len() > 1 {
                        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
                    } else {
                        0.0
                    };
                    (k, (mean, var.sqrt()))
                })
                .collect();
            Row {
                algorithm,
                reward,
                seeds: runs.len(),
                stats,
            }
        })
        .collect()
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

fn cell(row: &Row, key: &str, pm: &str) -> String {
    match row.stats.get(key) {
        Some((m, s)) if key == "mmd2" => format!("{m:.4} {pm} {s:.4}"),
        Some((m, s)) => format!("{m:.3} {pm} {s:.3}"),
        None => "–".into(),
    }
}

/// Renders the table.
pub fn render(rows: &[Row], format: Format) -> String {
    let cols = columns(rows);
    match format {
        Format::Markdown => {
            let mut out = format!(
                "| reward fn | algorithm | seeds | {} |\n|---|---|---|{}\n",
                cols.iter()
                    .map(|c| c.1.as_str())
                    .collect::<Vec<_>>()
                    .join(" | "),
                "---|".repeat(cols.len())
            );
            for r in rows {
                out.push_str(&format!(
                    "| {} | {} | {} | {} |\n",
                    r.reward,
                    r.algorithm,
                    r.seeds,
                    cols.iter()
                        .map(|c| cell(r, &c.0, "±"))
                        .collect::<Vec<_>>()
                        .join(" | ")
                ));
            }
            out
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let mut header = vec!["reward_fn".to_string(), "algorithm".into(), "seeds".into()];
            for c in &cols {
                header.push(format!("{}_mean", c.0));
                header.push(format!("{}_std", c.0));
            }
            w.write_record(&header).expect("in-memory CSV");
            for r in rows {
                let mut rec = vec![r.reward.clone(), r.algorithm.clone(), r.seeds.to_string()];
                for c in &cols {
                    let (m, s) = r.stats.get(&c.0).copied().unwrap_or((f64::NAN, f64::NAN));
                    rec.push(format!("{m}"));
                    rec.push(format!("{s}"));
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
                "\\begin{{tabular}}{{ll r{}}}\n\\toprule\nReward & Algorithm & Seeds & {} \\\\\n\\midrule\n",
                "c".repeat(cols.len()),
                cols.iter().map(|c| esc(&c.1)).collect::<Vec<_>>().join(" & ")
            );
            for r in rows {
                out.push_str(&format!(
                    "{} & {} & {} & {} \\\\\n",
                    esc(&r.reward),
                    esc(&r.algorithm),
                    r.seeds,
                    cols.iter()
                        .map(|c| cell(r, &c.0, "$\\pm$"))
                        .collect::<Vec<_>>()
                        .join(" & ")
                ));
            }
            out.push_str("\\bottomrule\n\\end{tabular}\n");
            out
        }
    }
}
