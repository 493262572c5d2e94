//! The plugins a `bench` binary knows: objectives, rewards and metrics, each registered once
//! by name. A plugin crate builds its own binary with `bench::main_with(plugins)` after
//! registering its own (see plugins/example).

use bench_algorithms::{register_builtin, AlgorithmEntry, Objective, RegisterObjective};
use bench_core::{ParamsCodec, Registry};
use bench_envs::sd::SdEnv;
use bench_envs::toy2d::Toy2d;
use bench_envs::DiffusionEnv;
use bench_metrics::{builtin_metrics, MetricEntry, MetricPlugin, MetricRegistry};
use bench_rewards::{builtin_rewards, RewardEntry, RewardPlugin, RewardRegistry};

use crate::backend::{Backend, Inner};

/// An objective, with a factory for each environment type this binary runs.
pub struct ObjectiveEntry {
    pub params: ParamsCodec,
    toy: AlgorithmEntry<Backend, Toy2d<Backend>>,
    sd: AlgorithmEntry<Backend, SdEnv<Backend>>,
}

/// An environment type the harness runs, and how it finds its objectives' factories.
pub trait HarnessEnv: DiffusionEnv<Backend> + Sized + 'static {
    fn factory(entry: &ObjectiveEntry) -> &AlgorithmEntry<Backend, Self>;
}

impl HarnessEnv for Toy2d<Backend> {
    fn factory(entry: &ObjectiveEntry) -> &AlgorithmEntry<Backend, Self> {
        &entry.toy
    }
}

impl HarnessEnv for SdEnv<Backend> {
    fn factory(entry: &ObjectiveEntry) -> &AlgorithmEntry<Backend, Self> {
        &entry.sd
    }
}

/// Objectives by name.
pub struct Objectives(Registry<ObjectiveEntry>);

impl Objectives {
    /// # Errors
    /// An unknown name, listing the known ones.
    pub fn get(&self, name: &str) -> Result<&ObjectiveEntry, String> {
        self.0.get(name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.0.names()
    }

    pub fn describe(&self) -> Vec<(&str, &'static str)> {
        self.0.describe()
    }
}

impl RegisterObjective for Objectives {
    fn objective<O: Objective>(&mut self, name: &str, about: &'static str) {
        self.0.register(
            name,
            about,
            ObjectiveEntry {
                params: ParamsCodec::of::<O::Params>(),
                toy: AlgorithmEntry::of::<O>(),
                sd: AlgorithmEntry::of::<O>(),
            },
        );
    }
}

/// The registries of a `bench` binary.
pub struct Plugins {
    pub objectives: Objectives,
    pub rewards: RewardRegistry<Backend>,
    /// Metrics run on the inference backend.
    pub metrics: MetricRegistry<Inner>,
}

impl Default for Plugins {
    /// The built-in objectives, rewards and metrics.
    fn default() -> Self {
        let mut objectives = Objectives(Registry::new("algorithm"));
        register_builtin(&mut objectives);
        Self {
            objectives,
            rewards: builtin_rewards(),
            metrics: builtin_metrics(),
        }
    }
}

impl Plugins {
    /// Adds an objective: it trains on every environment this binary runs.
    pub fn objective<O: Objective>(&mut self, name: &str, about: &'static str) {
        self.objectives.objective::<O>(name, about);
    }

    /// Adds a reward.
    pub fn reward<R: RewardPlugin>(&mut self, name: &str, about: &'static str) {
        self.rewards.register(name, about, RewardEntry::of::<R>());
    }

    /// Adds a metric: a column of `bench table` wherever a sweep names it.
    pub fn metric<M: MetricPlugin>(&mut self, name: &str, about: &'static str) {
        self.metrics.register(name, about, MetricEntry::of::<M>());
    }
}
