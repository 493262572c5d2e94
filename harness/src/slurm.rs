//! `bench slurm SWEEP.ron`: an sbatch script that runs a sweep as a Slurm job array — each
//! array task runs its shard of the grid (`bench run` reads `SLURM_ARRAY_TASK_ID` and
//! `SLURM_ARRAY_TASK_COUNT`, see [`crate::shard`]) into one results directory that every node
//! sees; `bench table` on it afterwards gives the same table as a local run.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::plan::plan;
use crate::plugins::Plugins;

#[derive(Args, Debug)]
pub struct SlurmArgs {
    /// The sweep file.
    pub sweep: PathBuf,
    /// The results directory, shared by the nodes (as `bench run --results`).
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Array tasks (default: one per run). Each runs its shard's runs one after another.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub shards: Option<u64>,
    /// GPUs per array task (`--gres=gpu:K`; the task runs with `--device cuda`, on the GPU
    /// Slurm gives it, or for K > 1 with `--device cuda:0,…,K-1 --devices-per-run K`: each
    /// run data-parallel on the task's K GPUs). 0 by default: runs train on the CPU.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=64))]
    pub gpus_per_run: u64,
    /// CPU cores per array task.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub cpus_per_run: u64,
    /// Wall-clock limit per task (`--time`: minutes, `MM:SS`, `HH:MM:SS`, `D-HH`,
    /// `D-HH:MM`, `D-HH:MM:SS` or `UNLIMITED`; e.g. `12:00:00`).
    #[arg(long, value_parser = time_limit)]
    pub time: Option<String>,
    /// The partition (`--partition`).
    #[arg(long)]
    pub partition: Option<String>,
    /// Memory per task (`--mem`: a whole number with an optional unit K, M, G or T, megabytes
    /// without one; e.g. `32G`).
    #[arg(long, value_parser = memory_size)]
    pub mem: Option<String>,
    /// Write the script to this file instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `path` in single quotes for a shell.
fn quoted(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// `path` made absolute against the working directory (the script runs elsewhere).
fn absolute(path: &Path) -> Result<PathBuf, String> {
    std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// A value for an `#SBATCH` line: one line, no characters sbatch would misread.
fn directive(name: &str, value: &str) -> Result<String, String> {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c == '#') {
        return Err(format!(
            "--{name} {value:?}: no spaces or `#` in a Slurm option"
        ));
    }
    Ok(value.to_string())
}

/// A `--time` value in one of the forms `sbatch` accepts (`man sbatch`), checked here so that a
/// typo is reported before a script is written, not when the array is submitted.
fn time_limit(value: &str) -> Result<String, String> {
    let digits = |s: &str| !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit());
    let clock = |s: &str| {
        let fields: Vec<&str> = s.split(':').collect();
        fields.len() <= 3 && fields.iter().all(|f| digits(f))
    };
    let valid = ["unlimited", "infinite"]
        .iter()
        .any(|word| value.eq_ignore_ascii_case(word))
        || match value.split_once('-') {
            Some((days, rest)) => digits(days) && clock(rest),
            None => clock(value),
        };
    if valid {
        Ok(value.to_string())
    } else {
        Err(format!(
            "`{value}` is not a Slurm time limit: expected minutes, MM:SS, HH:MM:SS, D-HH, \
             D-HH:MM, D-HH:MM:SS or UNLIMITED"
        ))
    }
}

/// A `--mem` value as `sbatch` reads it: a whole number, then at most one unit letter.
fn memory_size(value: &str) -> Result<String, String> {
    let number = value.trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
    let units = value.len() - number.len();
    if !number.is_empty() && units <= 1 && number.bytes().all(|b| b.is_ascii_digit()) {
        Ok(value.to_string())
    } else {
        Err(format!(
            "`{value}` is not a Slurm memory size: expected a whole number with an optional \
             unit K, M, G or T (e.g. 32G; megabytes without one)"
        ))
    }
}

/// The script for `args` (the sweep is validated first: a sweep that `bench run` would refuse
/// gives no script).
///
/// # Errors
/// An invalid sweep, a bad option value, an unwritable `--out`.
pub fn slurm(args: &SlurmArgs, plugins: &Plugins) -> Result<(), String> {
    let planned = plan(&args.sweep, &args.results, plugins)?;
    let runs = planned.runs.len();
    if runs == 0 {
        return Err(format!("{}: the sweep has no runs", args.sweep.display()));
    }
    let shards = args.shards.map_or(runs, |s| (s as usize).min(runs));
    let bench = std::env::current_exe().map_err(|e| format!("the bench binary: {e}"))?;
    let cwd = std::env::current_dir().map_err(|e| format!("the working directory: {e}"))?;
    let (sweep, results) = (absolute(&args.sweep)?, absolute(&args.results)?);
    let name = &planned.name;
    let safe_name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!(
            "# `bench slurm`: sweep `{name}`, {runs} runs as an array of {shards} tasks; task I \
             runs shard I/{shards}"
        ),
        format!(
            "# into {} (shared by the nodes). Submit with `sbatch FILE`; afterwards \
             `bench table {}`.",
            results.display(),
            results.join(name).display()
        ),
        format!("#SBATCH --job-name=bench-{safe_name}"),
        format!("#SBATCH --array=0-{}", shards - 1),
        "#SBATCH --ntasks=1".to_string(),
        format!("#SBATCH --cpus-per-task={}", args.cpus_per_run),
        format!(
            "#SBATCH --chdir={}",
            directive("chdir", &cwd.display().to_string())?
        ),
        format!("#SBATCH --output=slurm-bench-{safe_name}-%A_%a.out"),
    ];
    if args.gpus_per_run > 0 {
        lines.push(format!("#SBATCH --gres=gpu:{}", args.gpus_per_run));
    }
    for (option, value) in [
        ("time", &args.time),
        ("partition", &args.partition),
        ("mem", &args.mem),
    ] {
        if let Some(v) = value {
            lines.push(format!("#SBATCH --{option}={}", directive(option, v)?));
        }
    }
    // Slurm's CUDA_VISIBLE_DEVICES numbers the task's GPUs from 0.
    let device = match args.gpus_per_run {
        0 => String::new(),
        1 => " --device cuda".to_string(),
        k => format!(
            " --device cuda:{} --devices-per-run {k}",
            (0..k).map(|i| i.to_string()).collect::<Vec<_>>().join(",")
        ),
    };
    lines.extend([
        "set -eu".to_string(),
        format!(
            "exec {} run {} --results {}{device} --quiet --jobs 1",
            quoted(&bench),
            quoted(&sweep),
            quoted(&results)
        ),
    ]);
    let script = lines.join("\n") + "\n";
    match &args.out {
        Some(out) => {
            std::fs::write(out, &script).map_err(|e| format!("writing {}: {e}", out.display()))?;
            eprintln!(
                "{runs} runs as {shards} array tasks: submit with `sbatch {}`",
                out.display()
            );
        }
        None => print!("{script}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_limits_are_those_sbatch_accepts() {
        for ok in [
            "30",
            "30:00",
            "12:00:00",
            "2-0",
            "2-12",
            "2-12:30",
            "2-12:30:15",
            "0",
            "UNLIMITED",
            "infinite",
        ] {
            assert_eq!(time_limit(ok).as_deref(), Ok(ok), "{ok}");
        }
        for bad in [
            "",
            "abc",
            "12h",
            "1:2:3:4",
            "-5",
            "2-",
            "2-1-1",
            ":30",
            "30:",
            "1.5",
            "2 days",
            "1-2:3:4:5",
            "9999999999",
        ] {
            let error = time_limit(bad).unwrap_err();
            assert!(error.contains("HH:MM:SS"), "{bad}: {error}");
        }
    }

    #[test]
    fn memory_sizes_are_numbers_with_one_unit() {
        for ok in ["32G", "500", "1024M", "2t", "0"] {
            assert_eq!(memory_size(ok).as_deref(), Ok(ok), "{ok}");
        }
        for bad in ["", "G", "32GB", "3.5G", "-1G", "32 G", "lots"] {
            assert!(memory_size(bad).is_err(), "{bad}");
        }
    }
}
