//! Planning a sweep: parse, expand and resolve it, build every run's environment, reward,
//! objective and metrics once to validate them — all before anything is written.

use std::path::{Path, PathBuf};

use rand::{rngs::StdRng, SeedableRng};

use bench_algorithms::{Algorithm, TargetSpec};
use bench_envs::EnvInfo;
use bench_metrics::MetricSetup;
use bench_rewards::{require_gradient, Reward};

use crate::backend::{Cpu, HarnessBackend};
use crate::eval::NamedMetric;
use crate::plugins::{HarnessEnv, Plugins};
use crate::resources::{with_env, Resources};
use crate::run_id::run_id;
use crate::sweep::{self, PlannedRun};

/// A sweep's runs with their ids, and what the process shares among them.
pub struct Plan<B: HarnessBackend = Cpu> {
    pub name: String,
    pub dir: PathBuf,
    pub runs: Vec<(String, PlannedRun)>,
    /// What runs share on the device the sweep was planned on.
    pub resources: Resources<B>,
    /// The same on each further device concurrent runs are placed on (see [`Plan::with_devices`]).
    more: Vec<Resources<B>>,
    /// Devices each run uses (data parallelism), consecutive in the list.
    per_run: usize,
}

impl<B: HarnessBackend> Plan<B> {
    /// The plan with `devices` added to the one it was planned on: concurrent runs take the
    /// devices in turn, each device loading the networks its runs use once.
    #[must_use]
    pub fn with_devices(mut self, devices: impl IntoIterator<Item = B::Device>) -> Self {
        self.more.extend(devices.into_iter().map(Resources::new));
        self
    }

    /// Each run trained on `k` of the devices at once (data parallelism): consecutive groups
    /// of `k`, taken in turn by the concurrent workers; devices left over a multiple of `k`
    /// stay idle.
    ///
    /// # Errors
    /// `k` is 0 or more than the plan's devices.
    pub fn with_devices_per_run(mut self, k: usize) -> Result<Self, String> {
        let devices = self.more.len() + 1;
        if k == 0 || k > devices {
            return Err(format!(
                "--devices-per-run {k}: each run needs 1 to {devices} device(s), the number \
                 --device names"
            ));
        }
        self.per_run = k;
        Ok(self)
    }

    /// How many runs can train at once, each on its group of devices.
    pub fn groups(&self) -> usize {
        (self.more.len() + 1) / self.per_run
    }

    /// The devices of the `worker`-th concurrent worker's runs, the main one first: the
    /// groups in turn.
    pub fn group_of(&self, worker: usize) -> Vec<&Resources<B>> {
        let first = (worker % self.groups()) * self.per_run;
        (first..first + self.per_run)
            .map(|i| match i {
                0 => &self.resources,
                k => &self.more[k - 1],
            })
            .collect()
    }
}

/// A run's reward, objective and metrics, built for its environment.
pub struct Components<B: HarnessBackend, E: HarnessEnv<B>> {
    pub reward: Box<dyn Reward<B>>,
    pub algorithm: Box<dyn Algorithm<B, E>>,
    /// Each metric with its name.
    pub metrics: Vec<NamedMetric<B::InnerBackend>>,
    /// The exact distribution the run is compared with, if any.
    pub target: Option<TargetSpec>,
}

/// Builds a run's components; every error names where the component was written.
///
/// # Errors
/// An unknown name, a reward or metric that cannot read the environment's samples, a reward
/// without the gradient the objective needs, or a component that refuses its parameters.
pub fn build<B: HarnessBackend, E: HarnessEnv<B>>(
    run: &PlannedRun,
    env: &E,
    plugins: &Plugins,
    resources: &Resources<B>,
) -> Result<Components<B, E>, String> {
    let c = &run.config;
    let kind = env.sample_kind();
    // Evaluation holds one batch of trajectories at a time (a whole prompt on the toy).
    let rows = env.eval_batch().min(c.eval.samples_per_prompt) as f64;
    let steps = env.scheduler().num_steps() as f64;
    bench_core::validate::fits_in_memory(
        &format!("eval.samples_per_prompt = {}", c.eval.samples_per_prompt),
        rows * (2.0 * (steps + 1.0) * env.dims() as f64 + steps) * 4.0,
    )
    .map_err(|e| format!("{}: {e}", run.eval_at))?;
    let registries = plugins.on::<B>();
    let reward_entry = registries
        .rewards
        .get(&c.reward.name)
        .map_err(|e| format!("{}: {e}", run.reward_at))?;
    if reward_entry.samples != kind {
        return Err(format!(
            "{}: reward `{}` scores {}, but environment {} produces {kind}",
            run.reward_at,
            c.reward.name,
            reward_entry.samples,
            c.env.name()
        ));
    }
    let reward = build_reward(run, plugins, resources)?;

    let entry = registries
        .objectives
        .get(&c.algorithm.name)
        .map_err(|e| format!("{}: {e}", run.algorithm_at))?;
    let mut rng = StdRng::seed_from_u64(c.seed);
    let algorithm = E::factory(entry)
        .build(&c.algorithm.params.0, env, &mut rng)
        .map_err(|e| {
            format!(
                "{}: algorithm `{}`: {e}",
                run.algorithm_at, c.algorithm.name
            )
        })?;
    if algorithm.needs_reward_gradient() {
        require_gradient(
            &format!("algorithm `{}`", c.algorithm.name),
            reward.as_ref(),
        )
        .map_err(|e| format!("{}: {e}", run.reward_at))?;
    }
    let target = algorithm.target(env).or_else(|| {
        c.eval.target.as_ref().map(|t| TargetSpec {
            kind: t.kind,
            beta: t.beta,
        })
    });

    let mut build = resources.inference_context();
    build.base_dir = Some(&run.base_dir);
    let setup = MetricSetup {
        build,
        env: env as &dyn EnvInfo,
        reward: &c.reward.name,
        reward_params: &c.reward.params.0,
        samples_per_prompt: c.eval.samples_per_prompt,
        toy_reward: reward.as_toy(),
        target,
    };
    let mut metrics = Vec::with_capacity(c.eval.metrics.len());
    for (m, at) in c.eval.metrics.iter().zip(&run.metrics_at) {
        let entry = registries
            .metrics
            .get(&m.name)
            .map_err(|e| format!("{at}: {e}"))?;
        if !entry.reads.contains(&kind) {
            return Err(format!(
                "{at}: metric `{}` reads {}, but environment {} produces {kind}",
                m.name,
                entry
                    .reads
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" or "),
                c.env.name()
            ));
        }
        let metric = entry
            .build(&m.params.0, &setup)
            .map_err(|e| format!("{at}: metric `{}`: {e}", m.name))?;
        metrics.push((m.label().to_string(), metric));
    }
    Ok(Components {
        reward,
        algorithm,
        metrics,
        target,
    })
}

/// A run's reward on `resources`' device (each device of a data-parallel run whose steps
/// differentiate the reward has its own).
///
/// # Errors
/// An unknown reward, or one that refuses its parameters; located where it was written.
pub fn build_reward<B: HarnessBackend>(
    run: &PlannedRun,
    plugins: &Plugins,
    resources: &Resources<B>,
) -> Result<Box<dyn Reward<B>>, String> {
    let c = &run.config;
    let entry = plugins
        .on::<B>()
        .rewards
        .get(&c.reward.name)
        .map_err(|e| format!("{}: {e}", run.reward_at))?;
    // Files a reward names are found as the environment's model is: from the sweep's folder.
    let mut cx = resources.build_context();
    cx.base_dir = Some(&run.base_dir);
    entry
        .build(&c.reward.params.0, &cx)
        .map_err(|e| format!("{}: reward `{}`: {e}", run.reward_at, c.reward.name))
}

/// Parses and validates a sweep file; nothing is written.
///
/// # Errors
/// The first problem found, naming the file, position or field.
pub fn plan(file: &Path, results: &Path, plugins: &Plugins) -> Result<Plan, String> {
    plan_on::<Cpu>(file, results, plugins, Default::default())
}

/// [`plan`] with the runs placed on `device`.
///
/// # Errors
/// As [`plan`].
pub fn plan_on<B: HarnessBackend>(
    file: &Path,
    results: &Path,
    plugins: &Plugins,
    device: B::Device,
) -> Result<Plan<B>, String> {
    let sweep = sweep::load(file, plugins)?;
    let resources = Resources::<B>::new(device);
    for run in &sweep.runs {
        with_env!(run, resources, plugins, file, |env| {
            build(run, env.as_ref(), plugins, &resources)?;
        });
    }
    let runs = sweep
        .runs
        .into_iter()
        .map(|r| (run_id(&r.config), r))
        .collect();
    Ok(Plan {
        dir: results.join(&sweep.name),
        name: sweep.name,
        runs,
        resources,
        more: Vec::new(),
        per_run: 1,
    })
}
