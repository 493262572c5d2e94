//! Algorithms by name.

use burn::tensor::backend::AutodiffBackend;
use rand::rngs::StdRng;

use bench_envs::DiffusionEnv;
use bench_rewards::Registry;

use crate::algorithm::Algorithm;

/// Builds an algorithm from its RON parameters for an environment; the RNG initialises its
/// networks.
pub type AlgorithmFactory<B, E> =
    fn(&ron::Value, &E, &mut StdRng) -> Result<Box<dyn Algorithm<B, E>>, String>;

/// Algorithms by name. Plugins add theirs with [`Registry::register`].
pub type AlgorithmRegistry<B, E> = Registry<AlgorithmFactory<B, E>>;

/// The built-in algorithms.
pub fn builtin_algorithms<B: AutodiffBackend, E: DiffusionEnv<B> + 'static>(
) -> AlgorithmRegistry<B, E> {
    let mut r = Registry::new("algorithm");
    r.register(
        "ddpo",
        "DDPO: PPO-clip on per-step log-prob ratios with per-prompt advantages",
        crate::ddpo::Ddpo::build as AlgorithmFactory<B, E>,
    );
    r.register(
        "dag_db",
        "DAG-DB: GFlowNet detailed balance with a forward-looking flow (exp(β·r), or tilted)",
        crate::dag_db::DagDb::build,
    );
    r
}

/// Builds `name` for `env`.
///
/// # Errors
/// An unknown name (listing the known ones) or invalid parameters.
pub fn build<B: AutodiffBackend, E: DiffusionEnv<B>>(
    registry: &AlgorithmRegistry<B, E>,
    name: &str,
    params: &ron::Value,
    env: &E,
    rng: &mut StdRng,
) -> Result<Box<dyn Algorithm<B, E>>, String> {
    registry.get(name)?(params, env, rng).map_err(|e| format!("algorithm `{name}`: {e}"))
}
