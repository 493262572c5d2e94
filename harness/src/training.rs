//! Training one run in its environment: build its components, resume from its last valid
//! checkpoint, train and evaluate epoch by epoch, and end it — done (policy exported, `DONE`),
//! diverged (`DIVERGED`), or interrupted at a safe point (a checkpoint to resume from).

use std::time::Instant;

use bench_algorithms::{Algorithm, Context, Scalars, Sharding};
use bench_rewards::Reward;

use crate::backend::HarnessBackend;
use crate::checkpoints;
use crate::divergence::{self, Divergence};
use crate::eval::{EvalError, Evaluation, Metrics};
use crate::interrupt::interrupted;
use crate::plan::{build, build_reward, Components};
use crate::plugins::{HarnessEnv, Plugins};
use crate::progress::Progress;
use crate::resources::Resources;
use crate::store::{write_atomic, CsvLog, RunDir};
use crate::sweep::PlannedRun;

/// How a training session of a run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Trained to its last epoch, from `resumed_from` epochs.
    Completed { resumed_from: usize },
    /// A quantity became non-finite; the run is marked and stops for good.
    Diverged(Divergence),
    /// Ctrl-C: stopped after `at` epochs, with a checkpoint there.
    Interrupted { at: usize },
}

/// A locked run in its environment.
pub struct Training<'a, B: HarnessBackend, E: HarnessEnv<B>> {
    pub run: &'a PlannedRun,
    pub env: &'a E,
    /// The run's environment on each further device of a data-parallel run (empty on one).
    pub replicas: &'a [&'a E],
    pub dir: &'a RunDir,
    pub plugins: &'a Plugins,
    /// The run's devices, the main one (`env`'s) first, then `replicas`'.
    pub group: &'a [&'a Resources<B>],
    pub progress: &'a Progress,
    /// The run's id, for messages and progress bars.
    pub name: &'a str,
}

impl<B: HarnessBackend, E: HarnessEnv<B>> Training<'_, B, E> {
    /// Builds the run's components and restores the newest checkpoint that verifies and loads;
    /// a corrupted or partial one is named and skipped for the previous one (or a fresh start).
    fn resume(&self) -> Result<(Components<B, E>, usize), String> {
        for (epoch, path) in checkpoints::list(self.dir) {
            let mut components = build(self.run, self.env, self.plugins, self.group[0])?;
            let loaded = checkpoints::verify(&path).and_then(|()| components.algorithm.load(&path));
            match loaded {
                Ok(()) => return Ok((components, epoch)),
                Err(e) => self.progress.println(
                    &format!(
                        "{}: checkpoint {} is unusable ({e}); trying an earlier one",
                        self.name,
                        path.display()
                    ),
                    true,
                ),
            }
        }
        Ok((build(self.run, self.env, self.plugins, self.group[0])?, 0))
    }

    /// Trains from the last valid checkpoint to the end.
    ///
    /// # Errors
    /// A failure of a component or of the disk.
    pub fn run(&self) -> Result<Outcome, String> {
        let config = &self.run.config;
        let leftovers = self.dir.remove_temporaries()?;
        if leftovers > 0 {
            self.progress.println(
                &format!(
                    "{}: removed {leftovers} file(s) a stopped process left half-written",
                    self.name
                ),
                true,
            );
        }
        let (
            Components {
                reward,
                mut algorithm,
                metrics,
                ..
            },
            start,
        ) = self.resume()?;
        // An objective whose sharded steps differentiate the reward needs it on every device.
        let replica_rewards = if !self.replicas.is_empty()
            && algorithm.data_parallel() == Sharding::SamplingAndSteps
            && algorithm.needs_reward_gradient()
        {
            self.group[1..]
                .iter()
                .map(|resources| build_reward(self.run, self.plugins, resources))
                .collect::<Result<Vec<_>, String>>()?
        } else {
            Vec::new()
        };
        let replica_rewards: Vec<&dyn Reward<B>> =
            replica_rewards.iter().map(AsRef::as_ref).collect();
        if !self.replicas.is_empty() {
            if let Some(what) = match algorithm.data_parallel() {
                Sharding::SamplingAndSteps => None,
                Sharding::Sampling => Some("its rollouts; its steps train"),
                Sharding::None => Some("nothing; it trains"),
            } {
                self.progress.println(
                    &format!(
                        "{}: {} spreads {what} on the first device only",
                        self.name, config.algorithm.name
                    ),
                    true,
                );
            }
        }
        let mut metrics_log = CsvLog::read_before(&self.dir.metrics(), start + 1);
        // Evaluations are indexed by epochs done; epoch 0 (the untrained policy) is evaluated
        // again when a run starts from scratch, so its old rows go.
        let kept = if start == 0 { 0 } else { start + 1 };
        let mut eval_log = CsvLog::read_before(&self.dir.eval(), kept);
        eval_log.header = vec!["epoch".into(), "metric".into(), "value".into()];
        let mut metrics = Metrics::new(metrics, &self.dir.path);
        let evaluation = Evaluation {
            env: self.env,
            replicas: self.replicas,
            reward: reward.as_ref(),
            samples_per_prompt: config.eval.samples_per_prompt,
            samples_dir: self.dir.path.join("samples"),
        };
        let context = |epoch| Context {
            env: self.env,
            replicas: self.replicas,
            reward: reward.as_ref(),
            replica_rewards: &replica_rewards,
            epoch,
            epochs: config.epochs,
            seed: config.seed,
        };
        let mut evaluate =
            |algorithm: &dyn Algorithm<B, E>, done: usize| -> Result<Scalars, Stop> {
                let mut rng = context(done).rng("eval");
                let scalars = evaluation
                    .run(
                        algorithm.policy(),
                        &mut metrics,
                        done,
                        config.epochs,
                        &mut rng,
                    )
                    .map_err(|e| match e {
                        EvalError::NonFinite { what, value } => Stop::Diverged(Divergence {
                            epoch: done,
                            quantity: what,
                            value,
                        }),
                        EvalError::Failed(e) => Stop::Failed(e),
                    })?;
                for (k, v) in &scalars {
                    eval_log
                        .rows
                        .push(vec![done.to_string(), k.clone(), format!("{v}")]);
                }
                eval_log.write(&self.dir.eval())?;
                Ok(scalars)
            };

        let bar = self.progress.run(self.name, config.epochs);
        bar.set_position(start as u64);
        let mut last_eval = Vec::new();
        let stopped = (|| -> Result<Outcome, Stop> {
            if start == 0 {
                // Epoch 0 is the base model: every table can show where training started.
                evaluate(algorithm.as_ref(), 0)?;
            }
            let mut checkpointed = start;
            for epoch in start..config.epochs {
                if interrupted() {
                    if checkpointed != epoch {
                        checkpoints::write(self.dir, epoch, |p| algorithm.save(p))?;
                    }
                    return Ok(Outcome::Interrupted { at: epoch });
                }
                let t0 = Instant::now();
                let scalars = algorithm.train_epoch(&context(epoch))?;
                let done = epoch + 1;
                log_epoch(&mut metrics_log, done, t0.elapsed().as_secs_f64(), &scalars);
                metrics_log.write(&self.dir.metrics())?;
                for warning in divergence::check(done, &scalars).map_err(Stop::Diverged)? {
                    self.progress
                        .println(&format!("{}: warning: {warning}", self.name), true);
                }
                if done % config.eval.every == 0 || done == config.epochs {
                    last_eval = evaluate(algorithm.as_ref(), done)?;
                }
                if done % config.checkpoint_every == 0 || done == config.epochs {
                    checkpoints::write(self.dir, done, |p| algorithm.save(p))?;
                    checkpoints::prune(self.dir, self.run.keep_checkpoints)?;
                    checkpointed = done;
                }
                if let Some((_, r)) = scalars.iter().find(|(k, _)| k == "reward_mean") {
                    bar.set_message(format!("reward {r:.3}"));
                }
                bar.inc(1);
            }
            Ok(Outcome::Completed {
                resumed_from: start,
            })
        })();
        bar.finish_and_clear();
        match stopped {
            Ok(Outcome::Completed { resumed_from }) => {
                self.env
                    .export_policy(algorithm.policy(), &self.dir.path.join("policy"))?;
                self.mark_done(last_eval, &eval_log)?;
                Ok(Outcome::Completed { resumed_from })
            }
            Ok(other) => Ok(other),
            Err(Stop::Diverged(d)) => {
                write_atomic(&self.dir.diverged_marker(), d.marker().as_bytes())?;
                Ok(Outcome::Diverged(d))
            }
            Err(Stop::Failed(e)) => Err(e),
        }
    }

    /// Writes the completion marker with the final evaluation (read back from the log when a
    /// run killed after its last checkpoint had evaluated already).
    fn mark_done(&self, last_eval: Scalars, eval_log: &CsvLog) -> Result<(), String> {
        let last_eval = if last_eval.is_empty() {
            let last = eval_log
                .rows
                .last()
                .map(|r| r[0].clone())
                .unwrap_or_default();
            eval_log
                .rows
                .iter()
                .filter(|r| r[0] == last)
                .filter_map(|r| Some((r[1].clone(), r[2].parse().ok()?)))
                .collect()
        } else {
            last_eval
        };
        let summary: String = last_eval
            .iter()
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect();
        write_atomic(&self.dir.done_marker(), summary.as_bytes())
    }
}

/// Why the epoch loop stopped early.
enum Stop {
    Diverged(Divergence),
    Failed(String),
}

impl From<String> for Stop {
    fn from(e: String) -> Self {
        Self::Failed(e)
    }
}

/// Appends one epoch's training scalars to `metrics.csv`'s rows (the header from the first).
fn log_epoch(log: &mut CsvLog, done: usize, seconds: f64, scalars: &Scalars) {
    if log.header.is_empty() {
        log.header = ["epoch", "seconds"].iter().map(|s| s.to_string()).collect();
        log.header.extend(scalars.iter().map(|(k, _)| k.clone()));
    }
    let mut row = vec![done.to_string(), format!("{seconds:.3}")];
    row.extend(scalars.iter().map(|(_, v)| format!("{v}")));
    log.rows.push(row);
}
