//! Planning a sweep: parse, expand and resolve it, build every run's environment, reward,
//! objective and metrics once to validate them — all before anything is written.

use std::path::{Path, PathBuf};

use rand::{rngs::StdRng, SeedableRng};

use bench_algorithms::{Algorithm, TargetSpec};
use bench_envs::EnvInfo;
use bench_metrics::{Metric, MetricSetup};
use bench_rewards::{require_gradient, Reward};

use crate::backend::{Backend, Device, Inner};
use crate::plugins::{HarnessEnv, Plugins};
use crate::resources::{with_env, Resources};
use crate::run_id::run_id;
use crate::sweep::{self, PlannedRun};

/// A sweep's runs with their ids, and what the process shares among them.
pub struct Plan {
    pub name: String,
    pub dir: PathBuf,
    pub runs: Vec<(String, PlannedRun)>,
    pub resources: Resources,
}

/// A run's reward, objective and metrics, built for its environment.
pub struct Components<E: HarnessEnv> {
    pub reward: Box<dyn Reward<Backend>>,
    pub algorithm: Box<dyn Algorithm<Backend, E>>,
    /// Each metric with its name.
    pub metrics: Vec<(String, Box<dyn Metric<Inner>>)>,
    /// The exact distribution the run is compared with, if any.
    pub target: Option<TargetSpec>,
}

/// Builds a run's components; every error names where the component was written.
///
/// # Errors
/// An unknown name, a reward or metric that cannot read the environment's samples, a reward
/// without the gradient the objective needs, or a component that refuses its parameters.
pub fn build<E: HarnessEnv>(
    run: &PlannedRun,
    env: &E,
    plugins: &Plugins,
    resources: &Resources,
) -> Result<Components<E>, String> {
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
    let reward_entry = plugins
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
    // Files a reward names are found as the environment's model is: from the sweep's folder.
    let mut cx = resources.build_context();
    cx.base_dir = Some(&run.base_dir);
    let reward = reward_entry
        .build(&c.reward.params.0, &cx)
        .map_err(|e| format!("{}: reward `{}`: {e}", run.reward_at, c.reward.name))?;

    let entry = plugins
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
        let entry = plugins
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

/// Parses and validates a sweep file; nothing is written.
///
/// # Errors
/// The first problem found, naming the file, position or field.
pub fn plan(file: &Path, results: &Path, plugins: &Plugins) -> Result<Plan, String> {
    plan_on(file, results, plugins, Device::default())
}

/// [`plan`] with the runs placed on `device`.
///
/// # Errors
/// As [`plan`].
pub fn plan_on(
    file: &Path,
    results: &Path,
    plugins: &Plugins,
    device: Device,
) -> Result<Plan, String> {
    let sweep = sweep::load(file, plugins)?;
    let resources = Resources::new(device);
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
    })
}
