//! What `bench doctor` says about a reward's weight files: each file or folder its parameters
//! name, checked from headers only (no tensor is loaded), with where to get the real one when
//! it is missing or does not fit.

use std::path::PathBuf;

use bench_models::weights::{FileReport, LoadError};

/// One file or folder a reward reads.
#[derive(Clone, Debug, PartialEq)]
pub struct FileCheck {
    /// The parameter naming it and what it is (`clip: CLIP vision tower`).
    pub what: String,
    pub path: PathBuf,
    /// What was found, or what is wrong and where to get the real file.
    pub outcome: Result<String, String>,
}

/// The problems of a report, at most ten listed.
fn misfit(report: &FileReport) -> String {
    let mut lines: Vec<String> = report
        .problems
        .iter()
        .take(10)
        .map(ToString::to_string)
        .collect();
    if report.problems.len() > 10 {
        lines.push(format!("… and {} more", report.problems.len() - 10));
    }
    format!(
        "{} has {} tensor(s) that do not fit:\n    {}",
        report.file.display(),
        report.problems.len(),
        lines.join("\n    ")
    )
}

impl FileCheck {
    /// The check of a module against a file's header: `described` says what the config
    /// describes (shown when the file fits), `source` where to get the real file.
    pub fn from_report(
        what: impl Into<String>,
        path: PathBuf,
        checked: Result<(String, FileReport), LoadError>,
        source: &str,
    ) -> Self {
        let outcome = match checked {
            Ok((described, report)) if report.problems.is_empty() => Ok(format!(
                "{described}; {} ({}, {} parameters)",
                report.file.display(),
                report.dtypes.join("/"),
                report.parameters
            )),
            Ok((_, report)) => Err(format!("{}; get {source}", misfit(&report))),
            Err(e) => Err(format!("{}; get {source}", e.without_sd_source())),
        };
        Self {
            what: what.into(),
            path,
            outcome,
        }
    }
}
