//! Algorithms by name.

use std::collections::BTreeMap;

use burn::tensor::backend::AutodiffBackend;
use rand::rngs::StdRng;

use bench_envs::DiffusionEnv;

use crate::algorithm::Algorithm;

/// Builds an algorithm from its RON parameters for an environment; the RNG initialises its
/// networks.
pub type AlgorithmFactory<B, E> =
    fn(&ron::Value, &E, &mut StdRng) -> Result<Box<dyn Algorithm<B, E>>, String>;

pub struct AlgorithmRegistry<B: AutodiffBackend, E: DiffusionEnv<B>> {
    factories: BTreeMap<String, (AlgorithmFactory<B, E>, &'static str)>,
}

impl<B: AutodiffBackend, E: DiffusionEnv<B> + 'static> Default for AlgorithmRegistry<B, E> {
    /// The built-in algorithms.
    fn default() -> Self {
        let mut r = Self {
            factories: BTreeMap::new(),
        };
        r.register(
            "ddpo",
            "DDPO: PPO-clip on per-step log-prob ratios with per-prompt advantages",
            crate::ddpo::Ddpo::build,
        );
        r.register(
            "dag_db",
            "DAG-DB: GFlowNet detailed balance with a forward-looking flow (exp(β·r), or tilted)",
            crate::dag_db::DagDb::build,
        );
        r
    }
}

impl<B: AutodiffBackend, E: DiffusionEnv<B>> AlgorithmRegistry<B, E> {
    pub fn register(&mut self, name: &str, about: &'static str, factory: AlgorithmFactory<B, E>) {
        self.factories.insert(name.to_string(), (factory, about));
    }

    pub fn names(&self) -> Vec<&str> {
        self.factories.keys().map(String::as_str).collect()
    }

    pub fn describe(&self) -> Vec<(&str, &'static str)> {
        self.factories
            .iter()
            .map(|(k, v)| (k.as_str(), v.1))
            .collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.factories.contains_key(name)
    }

    /// # Errors
    /// An unknown name (listing the known ones) or invalid parameters.
    pub fn build(
        &self,
        name: &str,
        params: &ron::Value,
        env: &E,
        rng: &mut StdRng,
    ) -> Result<Box<dyn Algorithm<B, E>>, String> {
        let (factory, _) = self.factories.get(name).ok_or_else(|| {
            format!(
                "unknown algorithm `{name}`; known algorithms: {}",
                self.names().join(", ")
            )
        })?;
        factory(params, env, rng).map_err(|e| format!("algorithm `{name}`: {e}"))
    }
}
