//! Rewards by name: each a [`RewardPlugin`] (typed parameters, the kind of sample it reads, a
//! factory), registered once and built per run from its resolved parameters.

use burn::tensor::backend::AutodiffBackend;

use bench_core::params::from_resolved;
use bench_core::{BuildContext, Params, ParamsCodec, Registry, SampleKind};

use crate::file_check::FileCheck;
use crate::reward::Reward;

/// A reward as a plugin.
pub trait RewardPlugin: 'static {
    /// Its parameters (`params: (...)` in a sweep); every field has a default.
    type Params: Params;
    /// What samples it reads; a sweep pairing it with an environment that produces another
    /// kind is refused when planned.
    const SAMPLES: SampleKind;

    /// # Errors
    /// Parameters out of range or networks that cannot be loaded, in words for the user.
    fn build<B: AutodiffBackend>(
        params: &Self::Params,
        cx: &BuildContext<'_, B>,
    ) -> Result<Box<dyn Reward<B>>, String>;

    /// The weight files `params` name, checked from their headers (`bench doctor --reward`);
    /// none for a reward without weights.
    fn check_files(_params: &Self::Params) -> Vec<FileCheck> {
        Vec::new()
    }
}

type Build<B> = fn(&str, &BuildContext<'_, B>) -> Result<Box<dyn Reward<B>>, String>;

/// A registered reward, its types erased.
pub struct RewardEntry<B: AutodiffBackend> {
    pub samples: SampleKind,
    pub params: ParamsCodec,
    build: Build<B>,
    check: fn(&str) -> Result<Vec<FileCheck>, String>,
}

fn check_from<R: RewardPlugin>(resolved: &str) -> Result<Vec<FileCheck>, String> {
    Ok(R::check_files(&from_resolved::<R::Params>(resolved)?))
}

fn build_from<R: RewardPlugin, B: AutodiffBackend>(
    resolved: &str,
    cx: &BuildContext<'_, B>,
) -> Result<Box<dyn Reward<B>>, String> {
    R::build(&from_resolved::<R::Params>(resolved)?, cx)
}

impl<B: AutodiffBackend> RewardEntry<B> {
    pub fn of<R: RewardPlugin>() -> Self {
        Self {
            samples: R::SAMPLES,
            params: ParamsCodec::of::<R::Params>(),
            build: build_from::<R, B>,
            check: check_from::<R>,
        }
    }

    /// Builds the reward from resolved parameters (see [`bench_core::params`]).
    ///
    /// # Errors
    /// As [`RewardPlugin::build`].
    pub fn build(
        &self,
        resolved: &str,
        cx: &BuildContext<'_, B>,
    ) -> Result<Box<dyn Reward<B>>, String> {
        (self.build)(resolved, cx)
    }

    /// Checks the weight files that resolved parameters name (see
    /// [`RewardPlugin::check_files`]).
    ///
    /// # Errors
    /// Parameters that do not parse.
    pub fn check_files(&self, resolved: &str) -> Result<Vec<FileCheck>, String> {
        (self.check)(resolved)
    }
}

/// Rewards by name. Plugins add theirs with
/// `registry.register(name, about, RewardEntry::of::<MyReward>())`.
pub type RewardRegistry<B> = Registry<RewardEntry<B>>;

/// A built-in reward with its default parameters, for tests, benches and scripts (networks are
/// loaded into a cache of its own).
///
/// # Errors
/// An unknown name, or a reward that cannot be built with its defaults.
pub fn builtin_reward<B: AutodiffBackend>(
    name: &str,
    device: &B::Device,
) -> Result<Box<dyn Reward<B>>, String> {
    let registry = builtin_rewards::<B>();
    let entry = registry.get(name)?;
    let cache = bench_core::NetworkCache::default();
    let cx = BuildContext::new(device.clone(), &cache);
    entry.build(&entry.params.defaults(), &cx)
}

/// The built-in rewards.
pub fn builtin_rewards<B: AutodiffBackend>() -> RewardRegistry<B> {
    let mut r = Registry::new("reward");
    crate::toy::register(&mut r);
    crate::image::register(&mut r);
    r
}
