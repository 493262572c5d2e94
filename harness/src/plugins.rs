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

use crate::backend::{Cpu, HarnessBackend};

/// An objective on one backend, with a factory for each environment type this binary runs.
pub struct ObjectiveEntry<B: HarnessBackend> {
    pub params: ParamsCodec,
    toy: AlgorithmEntry<B, Toy2d<B>>,
    sd: AlgorithmEntry<B, SdEnv<B>>,
}

/// An environment type the harness runs, and how it finds its objectives' factories.
pub trait HarnessEnv<B: HarnessBackend>: DiffusionEnv<B> + Sized + 'static {
    fn factory(entry: &ObjectiveEntry<B>) -> &AlgorithmEntry<B, Self>;
}

impl<B: HarnessBackend> HarnessEnv<B> for Toy2d<B> {
    fn factory(entry: &ObjectiveEntry<B>) -> &AlgorithmEntry<B, Self> {
        &entry.toy
    }
}

impl<B: HarnessBackend> HarnessEnv<B> for SdEnv<B> {
    fn factory(entry: &ObjectiveEntry<B>) -> &AlgorithmEntry<B, Self> {
        &entry.sd
    }
}

/// Objectives by name.
pub struct Objectives<B: HarnessBackend>(Registry<ObjectiveEntry<B>>);

impl<B: HarnessBackend> Objectives<B> {
    /// # Errors
    /// An unknown name, listing the known ones.
    pub fn get(&self, name: &str) -> Result<&ObjectiveEntry<B>, String> {
        self.0.get(name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.0.names()
    }

    pub fn describe(&self) -> Vec<(&str, &'static str)> {
        self.0.describe()
    }
}

impl<B: HarnessBackend> RegisterObjective for Objectives<B> {
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

/// The plugins' factories on one backend.
pub struct Registries<B: HarnessBackend> {
    pub objectives: Objectives<B>,
    pub rewards: RewardRegistry<B>,
    /// Metrics run on the inference backend.
    pub metrics: MetricRegistry<B::InnerBackend>,
}

impl<B: HarnessBackend> Default for Registries<B> {
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

impl<B: HarnessBackend> Registries<B> {
    fn objective<O: Objective>(&mut self, name: &str, about: &'static str) {
        self.objectives.objective::<O>(name, about);
    }

    fn reward<R: RewardPlugin>(&mut self, name: &str, about: &'static str) {
        self.rewards.register(name, about, RewardEntry::of::<R>());
    }

    fn metric<M: MetricPlugin>(&mut self, name: &str, about: &'static str) {
        self.metrics.register(name, about, MetricEntry::of::<M>());
    }
}

/// The registries of a `bench` binary: every plugin is registered once by name and gets a
/// factory on each backend the binary is built with.
pub struct Plugins {
    pub(crate) cpu: Registries<Cpu>,
    #[cfg(feature = "cuda")]
    pub(crate) cuda: Registries<crate::backend::Cuda>,
}

impl Default for Plugins {
    /// The built-in objectives, rewards and metrics.
    fn default() -> Self {
        Self {
            cpu: Registries::default(),
            #[cfg(feature = "cuda")]
            cuda: Registries::default(),
        }
    }
}

impl Plugins {
    /// The factories on backend `B`.
    pub fn on<B: HarnessBackend>(&self) -> &Registries<B> {
        B::registries(self)
    }

    /// What the plugins are: names, descriptions, parameter types and sample kinds, which are
    /// the same on every backend (read from the CPU's registries).
    pub fn catalog(&self) -> &Registries<Cpu> {
        &self.cpu
    }

    /// Adds an objective: it trains on every environment and backend this binary runs.
    pub fn objective<O: Objective>(&mut self, name: &str, about: &'static str) {
        self.cpu.objective::<O>(name, about);
        #[cfg(feature = "cuda")]
        self.cuda.objective::<O>(name, about);
    }

    /// Adds a reward.
    pub fn reward<R: RewardPlugin>(&mut self, name: &str, about: &'static str) {
        self.cpu.reward::<R>(name, about);
        #[cfg(feature = "cuda")]
        self.cuda.reward::<R>(name, about);
    }

    /// Adds a metric: a column of `bench table` wherever a sweep names it.
    pub fn metric<M: MetricPlugin>(&mut self, name: &str, about: &'static str) {
        self.cpu.metric::<M>(name, about);
        #[cfg(feature = "cuda")]
        self.cuda.metric::<M>(name, about);
    }
}
