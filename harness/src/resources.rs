//! What one `bench` process shares among its runs: the device, the networks loaded so far (an
//! SD pipeline per model, reward and metric networks) and the environments built, one per
//! distinct (environment, sampler) configuration.

// The device type follows the backend (a cargo feature); not every backend's is `Copy`.
#![allow(clippy::clone_on_copy)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bench_core::{BuildContext, NetworkCache};
use bench_envs::sd::{SdEnv, SdPipeline};
use bench_envs::toy2d::Toy2d;
use bench_models::Precision;

use crate::backend::HarnessBackend;
use crate::plugins::Plugins;
use crate::run_config::EnvConfig;
use crate::sweep::PlannedRun;

pub struct Resources<B: HarnessBackend> {
    pub device: B::Device,
    pub networks: NetworkCache,
    toy: Mutex<HashMap<String, Arc<Toy2d<B>>>>,
    sd: Mutex<HashMap<String, Arc<SdEnv<B>>>>,
}

/// The cache key of an environment: its configuration, sampler and the folder relative paths
/// start from.
fn env_key<T: serde::Serialize>(env: &T, run: &PlannedRun) -> String {
    ron::to_string(&(env, &run.config.sampler, &run.base_dir)).expect("configs serialise")
}

fn cached<E>(
    cache: &Mutex<HashMap<String, Arc<E>>>,
    key: String,
    build: impl FnOnce() -> Result<E, String>,
) -> Result<Arc<E>, String> {
    let mut map = cache
        .lock()
        .map_err(|_| "environment cache poisoned by a panic".to_string())?;
    if let Some(env) = map.get(&key) {
        return Ok(env.clone());
    }
    let env = Arc::new(build()?);
    map.insert(key, env.clone());
    Ok(env)
}

impl<B: HarnessBackend> Resources<B> {
    pub fn new(device: B::Device) -> Self {
        Self {
            device,
            networks: NetworkCache::default(),
            toy: Mutex::default(),
            sd: Mutex::default(),
        }
    }

    /// What plugin factories get.
    pub fn build_context(&self) -> BuildContext<'_, B> {
        BuildContext::new(self.device.clone(), &self.networks)
    }

    /// The same for plugins on the inference backend (metrics).
    pub fn inference_context(&self) -> BuildContext<'_, B::InnerBackend> {
        BuildContext::new(self.device.clone(), &self.networks)
    }

    /// The toy of a toy run; with instruments, a toy of its own built from the run's exact
    /// solution (see [`crate::instruments`]).
    ///
    /// # Errors
    /// Invalid environment or sampler settings, instruments on a run without a closed-form
    /// target, or a run on another environment.
    pub fn toy(&self, run: &PlannedRun, plugins: &Plugins) -> Result<Arc<Toy2d<B>>, String> {
        let EnvConfig::Toy2d(c) = &run.config.env else {
            return Err("not a toy2d run".into());
        };
        let plain = c.plain();
        let env = cached(&self.toy, env_key(&plain, run), || {
            Toy2d::new(
                plain.clone(),
                run.config.sampler.clone(),
                self.device.clone(),
            )
        })?;
        if !c.instrumented() {
            return Ok(env);
        }
        let solution = crate::instruments::run_solution(run, env.as_ref(), plugins, self)?;
        let key = format!("{}:{solution:?}", env_key(c, run));
        cached(&self.toy, key, || {
            Toy2d::with_solution(
                c.clone(),
                run.config.sampler.clone(),
                self.device.clone(),
                Some(&solution),
            )
        })
    }

    /// The SD environment of an SD run: its model's pipeline is loaded once per process,
    /// whatever the samplers of the runs that use it. Relative paths are the sweep file's.
    ///
    /// # Errors
    /// Missing weights (naming the path tried and where to get them), bad settings, or
    /// another env.
    pub fn sd(&self, run: &PlannedRun) -> Result<Arc<SdEnv<B>>, String> {
        match &run.config.env {
            EnvConfig::Sd(written) => cached(&self.sd, env_key(written, run), || {
                let c = written.relative_to(&run.base_dir);
                let pipeline = self.sd_pipeline(&c.model, c.dtype).map_err(|e| {
                    let tried = if written.model.is_relative() {
                        format!(
                            " (`{}` is relative to the sweep file's folder `{}`)",
                            written.model.display(),
                            run.base_dir.display()
                        )
                    } else {
                        String::new()
                    };
                    format!("env.model{tried}: {e}")
                })?;
                SdEnv::new(c, run.config.sampler.clone(), pipeline, self.device.clone())
            }),
            EnvConfig::Toy2d(_) => Err("not an sd run".into()),
        }
    }

    /// The pipeline of an SD model in a precision, loaded on first use.
    ///
    /// # Errors
    /// As [`SdPipeline::load`].
    pub fn sd_pipeline(
        &self,
        model: &std::path::Path,
        precision: Precision,
    ) -> Result<Arc<SdPipeline<B::InnerBackend>>, String> {
        let key = format!(
            "sd-pipeline:{}:{}",
            precision.name(),
            std::fs::canonicalize(model)
                .unwrap_or_else(|_| model.to_path_buf())
                .display()
        );
        self.networks
            .get_or_load(&key, || SdPipeline::load_in(model, precision, &self.device))
    }
}

/// Calls `$body` with `$env` bound to the run's environment (an `Arc` of its concrete type),
/// so that generic code serves every environment; errors are prefixed with `$file`.
macro_rules! with_env {
    ($run:expr, $resources:expr, $plugins:expr, $file:expr, |$env:ident| $body:expr) => {
        $crate::resources::with_envs!($run, [&$resources], $plugins, $file, |envs| {
            let mut envs = envs;
            let $env = envs.swap_remove(0);
            $body
        })
    };
}
pub(crate) use with_env;

/// [`with_env`] for a data-parallel run: `$envs` is the run's environment on each device of
/// `$group` (a slice of [`Resources`]), the main one first, all of one concrete type.
macro_rules! with_envs {
    ($run:expr, $group:expr, $plugins:expr, $file:expr, |$envs:ident| $body:expr) => {
        match &$run.config.env {
            $crate::run_config::EnvConfig::Toy2d(_) => {
                let $envs = $group
                    .iter()
                    .map(|r| r.toy($run, $plugins))
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(|e| format!("{}: env: {e}", $file.display()))?;
                $body
            }
            $crate::run_config::EnvConfig::Sd(_) => {
                let $envs = $group
                    .iter()
                    .map(|r| r.sd($run))
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(|e| format!("{}: env: {e}", $file.display()))?;
                $body
            }
        }
    };
}
pub(crate) use with_envs;
