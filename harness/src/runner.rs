//! Runs a planned sweep: skips finished runs, resumes interrupted ones from their last valid
//! checkpoint, never lets two processes share a run, and goes on past a run that diverges or
//! fails, so that one bad setting costs only its own runs.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::backend::HarnessBackend;
use crate::compute_pool::ComputePool;
use crate::divergence::Divergence;
use crate::interrupt::interrupted;
use crate::plan::Plan;
use crate::plugins::Plugins;
use crate::progress::Progress;
use crate::resources::{with_envs, Resources};
use crate::run_id::canonical;
use crate::store::{write_atomic, RunDir};
use crate::sweep::PlannedRun;
use crate::training::{Outcome, Training};

pub use crate::plan::plan;

/// What happened to one run.
#[derive(Clone, Debug, PartialEq)]
pub enum RunStatus {
    /// Finished by an earlier invocation: nothing was redone.
    AlreadyDone,
    /// Trained to the end now, from `resumed_from` epochs (0 for a fresh start).
    Completed { resumed_from: usize },
    /// Another process holds the run's lock.
    Locked,
    /// A quantity became non-finite (now, or in an earlier invocation).
    Diverged(Divergence),
    /// Stopped by Ctrl-C at a checkpoint; the same command resumes it.
    Interrupted { at: usize },
    /// The run could not go on (the message says why); others went on.
    Failed(String),
    /// Not started: the sweep was interrupted first.
    NotStarted,
}

impl RunStatus {
    fn describe(&self) -> String {
        match self {
            Self::AlreadyDone => "already done, skipped".to_string(),
            Self::Completed { resumed_from: 0 } => "completed".to_string(),
            Self::Completed { resumed_from } => {
                format!("resumed at epoch {resumed_from}, completed")
            }
            Self::Locked => "locked by another process, skipped".to_string(),
            Self::Diverged(d) => d.describe(),
            Self::Interrupted { at } => format!("interrupted after epoch {at}, checkpointed"),
            Self::Failed(e) => format!("failed: {e}"),
            Self::NotStarted => "not started".to_string(),
        }
    }
}

/// How many runs ended each way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub done: usize,
    pub skipped: usize,
    pub locked: usize,
    pub diverged: usize,
    pub failed: usize,
    pub interrupted: usize,
}

impl Summary {
    pub fn of(statuses: &[(String, RunStatus)]) -> Self {
        let mut s = Self::default();
        for (_, status) in statuses {
            match status {
                RunStatus::Completed { .. } => s.done += 1,
                RunStatus::AlreadyDone => s.skipped += 1,
                RunStatus::Locked => s.locked += 1,
                RunStatus::Diverged(_) => s.diverged += 1,
                RunStatus::Failed(_) => s.failed += 1,
                RunStatus::Interrupted { .. } | RunStatus::NotStarted => s.interrupted += 1,
            }
        }
        s
    }

    /// Whether the sweep's exit status should say something went wrong.
    pub fn is_clean(&self) -> bool {
        self.diverged == 0 && self.failed == 0 && self.interrupted == 0
    }

    pub fn line(&self) -> String {
        let mut parts = vec![
            format!("{} done", self.done),
            format!("{} already done", self.skipped),
            format!("{} locked", self.locked),
            format!("{} diverged", self.diverged),
            format!("{} failed", self.failed),
        ];
        if self.interrupted > 0 {
            parts.push(format!("{} interrupted", self.interrupted));
        }
        parts.join(", ")
    }
}

/// Runs every run of the plan, `jobs` at a time, the workers taking the plan's devices in
/// turn (runs are independent and each is deterministic, so the results depend on neither
/// `jobs` nor the placement), each worker's runs computed on a rayon pool of its own with its
/// share of the threads ([`ComputePool`]). A run that diverges or fails is
/// reported and the others go on; Ctrl-C stops every run at its next safe point.
pub fn execute<B: HarnessBackend>(
    plan: &Plan<B>,
    file: &Path,
    plugins: &Plugins,
    progress: &Progress,
    jobs: usize,
) -> Vec<(String, RunStatus)> {
    let bar = progress.sweep(plan.runs.len());
    let next = AtomicUsize::new(0);
    let statuses: Mutex<Vec<RunStatus>> = Mutex::new(vec![RunStatus::NotStarted; plan.runs.len()]);
    let workers = jobs.clamp(1, plan.runs.len().max(1));
    std::thread::scope(|scope| {
        for worker in 0..workers {
            let group = plan.group_of(worker);
            let (next, statuses, bar) = (&next, &statuses, &bar);
            scope.spawn(move || {
                let pool = ComputePool::for_job(worker, workers);
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= plan.runs.len() || interrupted() {
                        break;
                    }
                    let (id, run) = &plan.runs[i];
                    let dir = RunDir::new(plan.dir.join(id));
                    let status = pool
                        .run(|| run_one(run, &dir, plugins, &group, file, progress, id))
                        .unwrap_or_else(RunStatus::Failed);
                    let error = matches!(
                        status,
                        RunStatus::Failed(_)
                            | RunStatus::Diverged(_)
                            | RunStatus::Interrupted { .. }
                    );
                    progress.println(&format!("{id}: {}", status.describe()), error);
                    if let Ok(mut all) = statuses.lock() {
                        all[i] = status;
                    }
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish();
    plan.runs
        .iter()
        .zip(statuses.into_inner().unwrap_or_default())
        .map(|((id, _), s)| (id.clone(), s))
        .collect()
}

/// Trains one run to completion, resuming from its last valid checkpoint.
///
/// # Errors
/// A failure of the run's components or of the disk.
pub fn run_one<B: HarnessBackend>(
    run: &PlannedRun,
    dir: &RunDir,
    plugins: &Plugins,
    group: &[&Resources<B>],
    file: &Path,
    progress: &Progress,
    name: &str,
) -> Result<RunStatus, String> {
    if dir.is_done() {
        return Ok(RunStatus::AlreadyDone);
    }
    if let Some(d) = diverged(dir) {
        return Ok(RunStatus::Diverged(d));
    }
    let Some(_lock) = dir.try_lock()? else {
        return Ok(RunStatus::Locked);
    };
    if dir.is_done() {
        return Ok(RunStatus::AlreadyDone);
    }
    write_atomic(&dir.config(), canonical(&run.config).as_bytes())?;
    let outcome = with_envs!(run, group, plugins, file, |envs| {
        let replicas: Vec<_> = envs[1..].iter().map(AsRef::as_ref).collect();
        Training {
            run,
            env: envs[0].as_ref(),
            replicas: &replicas,
            dir,
            plugins,
            group,
            progress,
            name,
        }
        .run()?
    });
    Ok(match outcome {
        Outcome::Completed { resumed_from } => RunStatus::Completed { resumed_from },
        Outcome::Diverged(d) => RunStatus::Diverged(d),
        Outcome::Interrupted { at } => RunStatus::Interrupted { at },
    })
}

/// The divergence an earlier invocation recorded: the run is not retried (it would diverge
/// again; delete its `DIVERGED` to retry).
fn diverged(dir: &RunDir) -> Option<Divergence> {
    let text = std::fs::read_to_string(dir.diverged_marker()).ok()?;
    Some(Divergence::parse(&text).unwrap_or(Divergence {
        epoch: 0,
        quantity: "unreadable DIVERGED marker".into(),
        value: f64::NAN,
    }))
}
