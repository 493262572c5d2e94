//! Runs a sweep: validates every run before touching the disk, skips finished runs, resumes
//! interrupted ones from their last checkpoint, and never lets two processes share a run.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use rand::{rngs::StdRng, SeedableRng};

use std::collections::HashMap;
use std::sync::Arc;

use bench_algorithms::{builtin_algorithms, Algorithm, AlgorithmRegistry, Context, TargetSpec};
use bench_envs::sd::SdEnv;
use bench_envs::toy2d::Toy2d;
use bench_rewards::{builtin_rewards, Reward, RewardRegistry};

use crate::backend::Backend;
use crate::eval::{Evaluate, SampleLog};
use crate::progress::Progress;
use crate::run_id::{canonical, run_id};
use crate::store::{write_atomic, CsvLog, RunDir};
use crate::sweep::{self, EnvConfig, RunConfig};

/// The registries a `bench` binary knows. A plugin crate builds its own binary with
/// `bench::main_with(plugins)` after registering its algorithms and rewards; an algorithm is
/// registered once per environment it runs on (the built-in ones are generic).
pub struct Plugins {
    pub toy_algorithms: AlgorithmRegistry<Backend, Toy2d<Backend>>,
    pub sd_algorithms: AlgorithmRegistry<Backend, SdEnv<Backend>>,
    pub rewards: RewardRegistry<Backend>,
}

impl Default for Plugins {
    /// The built-in algorithms and rewards.
    fn default() -> Self {
        Self {
            toy_algorithms: builtin_algorithms(),
            sd_algorithms: builtin_algorithms(),
            rewards: builtin_rewards(),
        }
    }
}

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

/// Environments built once per distinct (env, sampler) configuration and shared by the runs
/// that use it: SD's weights are loaded once per sweep, not once per run.
#[derive(Default)]
pub struct Envs {
    toy: Mutex<HashMap<String, Arc<Toy2d<Backend>>>>,
    sd: Mutex<HashMap<String, Arc<SdEnv<Backend>>>>,
}

fn cached<E>(
    cache: &Mutex<HashMap<String, Arc<E>>>,
    run: &RunConfig,
    build: impl FnOnce() -> Result<E, String>,
) -> Result<Arc<E>, String> {
    let key = ron::to_string(&(&run.env, &run.sampler)).expect("configs serialise");
    let mut map = cache.lock().expect("no poisoning");
    if let Some(env) = map.get(&key) {
        return Ok(env.clone());
    }
    let env = Arc::new(build()?);
    map.insert(key, env.clone());
    Ok(env)
}

impl Envs {
    /// The toy of a toy run.
    ///
    /// # Errors
    /// Invalid environment or sampler settings, or a run on another environment.
    pub fn toy(&self, run: &RunConfig) -> Result<Arc<Toy2d<Backend>>, String> {
        match &run.env {
            EnvConfig::Toy2d(c) => cached(&self.toy, run, || {
                Toy2d::new(c.clone(), run.sampler.clone(), Default::default())
            }),
            EnvConfig::Sd(_) => Err("not a toy2d run".into()),
        }
    }

    /// The SD environment of an SD run (its weights loaded and prompts encoded).
    ///
    /// # Errors
    /// Missing weights (naming files and where to get them), bad settings, or another env.
    pub fn sd(&self, run: &RunConfig) -> Result<Arc<SdEnv<Backend>>, String> {
        match &run.env {
            EnvConfig::Sd(c) => cached(&self.sd, run, || {
                SdEnv::new(c.clone(), run.sampler.clone(), Default::default())
            }),
            EnvConfig::Toy2d(_) => Err("not an sd run".into()),
        }
    }
}

/// Builds the toy environment of a run (uncached).
///
/// # Errors
/// Invalid environment or sampler settings, or a run on another environment.
pub fn build_toy(run: &RunConfig) -> Result<Toy2d<Backend>, String> {
    match &run.env {
        EnvConfig::Toy2d(c) => Toy2d::new(c.clone(), run.sampler.clone(), Default::default()),
        EnvConfig::Sd(_) => Err("not a toy2d run".into()),
    }
}

/// Calls `$body` with `$env` bound to the run's environment and `$registry` to the algorithm
/// registry for its type, so that generic code serves every environment.
macro_rules! with_env {
    ($run:expr, $envs:expr, $plugins:expr, $file:expr, |$env:ident, $registry:ident| $body:expr) => {
        match &$run.env {
            EnvConfig::Toy2d(_) => {
                let $env = $envs
                    .toy($run)
                    .map_err(|e| format!("{}: env: {e}", $file.display()))?;
                let $registry = &$plugins.toy_algorithms;
                $body
            }
            EnvConfig::Sd(_) => {
                let $env = $envs
                    .sd($run)
                    .map_err(|e| format!("{}: env: {e}", $file.display()))?;
                let $registry = &$plugins.sd_algorithms;
                $body
            }
        }
    };
}

/// A run's reward and algorithm.
type Components<E> = (Box<dyn Reward<Backend>>, Box<dyn Algorithm<Backend, E>>);

fn build<E: Evaluate<Backend> + 'static>(
    run: &RunConfig,
    env: &E,
    algorithms: &AlgorithmRegistry<Backend, E>,
    plugins: &Plugins,
    file: &Path,
) -> Result<Components<E>, String> {
    let reward = plugins
        .rewards
        .build(&run.reward.name, &run.reward.params)
        .map_err(|e| format!("{}: {e}", sweep::locate(file, &run.reward.name)))?;
    let mut rng = StdRng::seed_from_u64(run.seed);
    let algorithm = bench_algorithms::build(
        algorithms,
        &run.algorithm.name,
        &run.algorithm.params,
        env,
        &mut rng,
    )
    .map_err(|e| format!("{}: {e}", sweep::locate(file, &run.algorithm.name)))?;
    if algorithm.needs_reward_gradient() {
        bench_algorithms::reward_gradient::require_differentiable(
            &run.algorithm.name,
            reward.as_ref(),
        )
        .map_err(|e| format!("{}: {e}", sweep::locate(file, &run.reward.name)))?;
    }
    Ok((reward, algorithm))
}

/// A sweep's runs with their directories, and the environments they use (built while
/// validating, kept for the runs).
pub struct Plan {
    pub name: String,
    pub dir: PathBuf,
    pub runs: Vec<(String, RunConfig)>,
    pub envs: Envs,
}

/// Parses and validates a sweep file; nothing is written.
///
/// # Errors
/// The first problem found, naming the file, position or field.
pub fn plan(file: &Path, results: &Path, plugins: &Plugins) -> Result<Plan, String> {
    let sweep = sweep::load(file)?;
    let runs: Vec<(String, RunConfig)> = sweep
        .expand()
        .into_iter()
        .map(|r| (run_id(&r), r))
        .collect();
    let envs = Envs::default();
    for (_, run) in &runs {
        with_env!(run, envs, plugins, file, |env, registry| {
            build(run, env.as_ref(), registry, plugins, file)?;
        });
    }
    Ok(Plan {
        dir: results.join(&sweep.name),
        name: sweep.name,
        runs,
        envs,
    })
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
                match run_one(run, &dir, plugins, &plan.envs, file, progress, id) {
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

fn target_of<E: Evaluate<Backend>>(
    run: &RunConfig,
    algorithm: &dyn Algorithm<Backend, E>,
    env: &E,
) -> Option<TargetSpec> {
    algorithm.target(env).or_else(|| {
        run.eval.target.as_ref().map(|t| TargetSpec {
            kind: t.kind,
            beta: t.beta,
        })
    })
}

/// Trains one run to completion, resuming from its last checkpoint.
///
/// # Errors
/// A failure of the algorithm or of the disk.
pub fn run_one(
    run: &RunConfig,
    dir: &RunDir,
    plugins: &Plugins,
    envs: &Envs,
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
    write_atomic(&dir.config(), canonical(run).as_bytes())?;
    with_env!(run, envs, plugins, file, |env, registry| {
        train(
            run,
            env.as_ref(),
            registry,
            dir,
            plugins,
            file,
            progress,
            name,
        )
    })
}

/// [`run_one`] once the run is locked, in its environment.
#[allow(clippy::too_many_arguments)]
fn train<E: Evaluate<Backend> + 'static>(
    run: &RunConfig,
    env: &E,
    algorithms: &AlgorithmRegistry<Backend, E>,
    dir: &RunDir,
    plugins: &Plugins,
    file: &Path,
    progress: &Progress,
    name: &str,
) -> Result<RunStatus, String> {
    let (reward, mut algorithm) = build(run, env, algorithms, plugins, file)?;
    let start = match dir.latest_checkpoint() {
        Some((epoch, path)) => {
            algorithm.load(&path)?;
            epoch
        }
        None => 0,
    };
    let mut metrics = CsvLog::read_before(&dir.metrics(), start + 1);
    // Evaluations are indexed by epochs done; epoch 0 is the untrained policy.
    let mut eval = CsvLog::read_before(&dir.eval(), start + 1);
    eval.header = vec!["epoch".into(), "metric".into(), "value".into()];
    let target = target_of(run, algorithm.as_ref(), env);

    let bar = progress.run(name, run.epochs);
    bar.set_position(start as u64);
    let mut last_eval = Vec::new();
    let evaluate = |algorithm: &dyn Algorithm<Backend, E>, done: usize, eval: &mut CsvLog| {
        let mut rng = Context {
            env,
            reward: reward.as_ref(),
            epoch: done,
            epochs: run.epochs,
            seed: run.seed,
        }
        .rng("eval");
        let mut samples = SampleLog::default();
        let scalars = env.evaluate(
            algorithm.policy(),
            reward.as_ref(),
            target,
            run.eval.samples_per_prompt,
            &mut rng,
            &mut samples,
        );
        let samples_dir = dir.path.join("samples");
        write_atomic(
            &samples_dir.join(format!("epoch-{done:06}.csv")),
            samples.to_csv().as_bytes(),
        )?;
        for (what, png) in &samples.pngs {
            write_atomic(
                &samples_dir.join(format!("epoch-{done:06}-{what}.png")),
                png,
            )?;
        }
        for (k, v) in &scalars {
            eval.rows
                .push(vec![done.to_string(), k.clone(), format!("{v}")]);
        }
        eval.write(&dir.eval()).map(|()| scalars)
    };
    if start == 0 {
        // Epoch 0 is the base model: every table can show where training started.
        evaluate(algorithm.as_ref(), 0, &mut eval)?;
    }
    for epoch in start..run.epochs {
        let t0 = Instant::now();
        let ctx = Context {
            env,
            reward: reward.as_ref(),
            epoch,
            epochs: run.epochs,
            seed: run.seed,
        };
        let scalars = algorithm.train_epoch(&ctx)?;
        let done = epoch + 1;
        if metrics.header.is_empty() {
            metrics.header = ["epoch", "seconds"].iter().map(|s| s.to_string()).collect();
            metrics
                .header
                .extend(scalars.iter().map(|(k, _)| k.clone()));
        }
        let mut row = vec![
            done.to_string(),
            format!("{:.3}", t0.elapsed().as_secs_f64()),
        ];
        row.extend(scalars.iter().map(|(_, v)| format!("{v}")));
        metrics.rows.push(row);
        metrics.write(&dir.metrics())?;

        if done % run.eval.every == 0 || done == run.epochs {
            last_eval = evaluate(algorithm.as_ref(), done, &mut eval)?;
        }
        if done % run.checkpoint_every == 0 || done == run.epochs {
            dir.write_checkpoint(done, |p| algorithm.save(p))?;
        }
        if let Some((_, r)) = scalars.iter().find(|(k, _)| k == "reward_mean") {
            bar.set_message(format!("reward {r:.3}"));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    env.export_policy(algorithm.policy(), &dir.path.join("policy"))?;
    // A run killed after its last checkpoint but before this marker has evaluated already.
    if last_eval.is_empty() {
        let last = eval.rows.last().map(|r| r[0].clone()).unwrap_or_default();
        last_eval = eval
            .rows
            .iter()
            .filter(|r| r[0] == last)
            .filter_map(|r| Some((r[1].clone(), r[2].parse().ok()?)))
            .collect();
    }
    let summary: String = last_eval
        .iter()
        .map(|(k, v)| format!("{k} = {v}\n"))
        .collect();
    write_atomic(&dir.done_marker(), summary.as_bytes())?;
    Ok(RunStatus::Completed {
        resumed_from: start,
    })
}
