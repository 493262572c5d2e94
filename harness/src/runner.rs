//! Runs a planned sweep: skips finished runs, resumes interrupted ones from their last
//! checkpoint, and never lets two processes share a run.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::plan::Plan;
use crate::plugins::Plugins;
use crate::progress::Progress;
use crate::resources::{with_env, Resources};
use crate::run_id::canonical;
use crate::store::{write_atomic, RunDir};
use crate::sweep::PlannedRun;
use crate::training::Training;

pub use crate::plan::plan;

/// What happened to one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunStatus {
    /// Finished by an earlier invocation: nothing was redone.
    AlreadyDone,
    /// Trained to the end now, from `resumed_from` epochs (0 for a fresh start).
    Completed { resumed_from: usize },
    /// Another process holds the run's lock.
    Locked,
}

/// Runs every run of the plan, `jobs` at a time (runs are independent and each is
/// deterministic, so the results do not depend on `jobs`).
///
/// # Errors
/// The first run that fails; runs already finished keep their results and no new run starts.
pub fn execute(
    plan: &Plan,
    file: &Path,
    plugins: &Plugins,
    progress: &Progress,
    jobs: usize,
) -> Result<Vec<(String, RunStatus)>, String> {
    let bar = progress.sweep(plan.runs.len());
    let next = AtomicUsize::new(0);
    let statuses: Mutex<Vec<Option<RunStatus>>> = Mutex::new(vec![None; plan.runs.len()]);
    let failure: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, plan.runs.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= plan.runs.len() || failure.lock().expect("no poisoning").is_some() {
                    break;
                }
                let (id, run) = &plan.runs[i];
                let dir = RunDir::new(plan.dir.join(id));
                match run_one(run, &dir, plugins, &plan.resources, file, progress, id) {
                    Ok(status) => {
                        progress.println(&format!("{id}: {}", describe(&status)), false);
                        statuses.lock().expect("no poisoning")[i] = Some(status);
                        bar.inc(1);
                    }
                    Err(e) => {
                        failure
                            .lock()
                            .expect("no poisoning")
                            .get_or_insert(format!("{id}: {e}"));
                        break;
                    }
                }
            });
        }
    });
    bar.finish();
    if let Some(e) = failure.into_inner().expect("no poisoning") {
        return Err(e);
    }
    Ok(plan
        .runs
        .iter()
        .zip(statuses.into_inner().expect("no poisoning"))
        .map(|((id, _), s)| (id.clone(), s.expect("every run ran")))
        .collect())
}

fn describe(status: &RunStatus) -> String {
    match status {
        RunStatus::AlreadyDone => "already done, skipped".to_string(),
        RunStatus::Completed { resumed_from: 0 } => "completed".to_string(),
        RunStatus::Completed { resumed_from } => {
            format!("resumed at epoch {resumed_from}, completed")
        }
        RunStatus::Locked => "locked by another process, skipped".to_string(),
    }
}

/// Trains one run to completion, resuming from its last checkpoint.
///
/// # Errors
/// A failure of the run's components or of the disk.
pub fn run_one(
    run: &PlannedRun,
    dir: &RunDir,
    plugins: &Plugins,
    resources: &Resources,
    file: &Path,
    progress: &Progress,
    name: &str,
) -> Result<RunStatus, String> {
    if dir.is_done() {
        return Ok(RunStatus::AlreadyDone);
    }
    let Some(_lock) = dir.try_lock()? else {
        return Ok(RunStatus::Locked);
    };
    if dir.is_done() {
        return Ok(RunStatus::AlreadyDone);
    }
    write_atomic(&dir.config(), canonical(&run.config).as_bytes())?;
    let resumed_from = with_env!(&run.config, resources, file, |env| {
        Training {
            run,
            env: env.as_ref(),
            dir,
            plugins,
            resources,
            progress,
            name,
        }
        .run()?
    });
    Ok(RunStatus::Completed { resumed_from })
}
