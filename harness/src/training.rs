//! Training one run in its environment: build its components, resume from its last
//! checkpoint, train and evaluate epoch by epoch, export the policy and mark it done.

use std::time::Instant;

use bench_algorithms::{Algorithm, Context, Scalars};

use crate::backend::Backend;
use crate::eval::{Evaluation, Metrics};
use crate::plan::{build, Components};
use crate::plugins::{HarnessEnv, Plugins};
use crate::progress::Progress;
use crate::resources::Resources;
use crate::store::{write_atomic, CsvLog, RunDir};
use crate::sweep::PlannedRun;

/// A locked run in its environment, trained to its last epoch.
pub struct Training<'a, E: HarnessEnv> {
    pub run: &'a PlannedRun,
    pub env: &'a E,
    pub dir: &'a RunDir,
    pub plugins: &'a Plugins,
    pub resources: &'a Resources,
    pub progress: &'a Progress,
    /// The run's id, for progress bars.
    pub name: &'a str,
}

impl<E: HarnessEnv> Training<'_, E> {
    /// Trains from the last checkpoint to the end; returns the epoch it resumed from.
    ///
    /// # Errors
    /// A failure of a component or of the disk.
    pub fn run(&self) -> Result<usize, String> {
        let config = &self.run.config;
        let Components {
            reward,
            mut algorithm,
            metrics,
            ..
        } = build(self.run, self.env, self.plugins, self.resources)?;
        let start = match self.dir.latest_checkpoint() {
            Some((epoch, path)) => {
                algorithm.load(&path)?;
                epoch
            }
            None => 0,
        };
        let mut metrics_log = CsvLog::read_before(&self.dir.metrics(), start + 1);
        // Evaluations are indexed by epochs done; epoch 0 is the untrained policy.
        let mut eval_log = CsvLog::read_before(&self.dir.eval(), start + 1);
        eval_log.header = vec!["epoch".into(), "metric".into(), "value".into()];
        let mut metrics = Metrics::new(metrics, &self.dir.path);
        let evaluation = Evaluation {
            env: self.env,
            reward: reward.as_ref(),
            samples_per_prompt: config.eval.samples_per_prompt,
            samples_dir: self.dir.path.join("samples"),
        };
        let context = |epoch| Context {
            env: self.env,
            reward: reward.as_ref(),
            epoch,
            epochs: config.epochs,
            seed: config.seed,
        };
        let mut evaluate = |algorithm: &dyn Algorithm<Backend, E>, done: usize| {
            let mut rng = context(done).rng("eval");
            let scalars = evaluation.run(algorithm.policy(), &mut metrics, done, &mut rng)?;
            for (k, v) in &scalars {
                eval_log
                    .rows
                    .push(vec![done.to_string(), k.clone(), format!("{v}")]);
            }
            eval_log.write(&self.dir.eval()).map(|()| scalars)
        };

        let bar = self.progress.run(self.name, config.epochs);
        bar.set_position(start as u64);
        let mut last_eval = Vec::new();
        if start == 0 {
            // Epoch 0 is the base model: every table can show where training started.
            evaluate(algorithm.as_ref(), 0)?;
        }
        for epoch in start..config.epochs {
            let t0 = Instant::now();
            let scalars = algorithm.train_epoch(&context(epoch))?;
            let done = epoch + 1;
            log_epoch(&mut metrics_log, done, t0.elapsed().as_secs_f64(), &scalars);
            metrics_log.write(&self.dir.metrics())?;
            if done % config.eval.every == 0 || done == config.epochs {
                last_eval = evaluate(algorithm.as_ref(), done)?;
            }
            if done % config.checkpoint_every == 0 || done == config.epochs {
                self.dir.write_checkpoint(done, |p| algorithm.save(p))?;
            }
            if let Some((_, r)) = scalars.iter().find(|(k, _)| k == "reward_mean") {
                bar.set_message(format!("reward {r:.3}"));
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        self.env
            .export_policy(algorithm.policy(), &self.dir.path.join("policy"))?;
        self.mark_done(last_eval, &eval_log)?;
        Ok(start)
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
