//! Rewards by name, built from their RON parameters.

use std::collections::BTreeMap;

use burn::tensor::backend::Backend;

use crate::reward::Reward;

/// Builds a reward from its `params` (a RON value; `()` or missing fields take defaults).
pub type RewardFactory<B> = fn(&ron::Value) -> Result<Box<dyn Reward<B>>, String>;

/// Name → factory. Plugins add theirs with [`RewardRegistry::register`].
pub struct RewardRegistry<B: Backend> {
    factories: BTreeMap<String, (RewardFactory<B>, &'static str)>,
}

impl<B: Backend> Default for RewardRegistry<B> {
    /// The built-in rewards.
    fn default() -> Self {
        let mut r = Self {
            factories: BTreeMap::new(),
        };
        crate::toy::register(&mut r);
        r
    }
}

impl<B: Backend> RewardRegistry<B> {
    pub fn register(&mut self, name: &str, about: &'static str, factory: RewardFactory<B>) {
        self.factories.insert(name.to_string(), (factory, about));
    }

    pub fn names(&self) -> Vec<&str> {
        self.factories.keys().map(String::as_str).collect()
    }

    /// Names with their one-line descriptions.
    pub fn describe(&self) -> Vec<(&str, &'static str)> {
        self.factories
            .iter()
            .map(|(k, v)| (k.as_str(), v.1))
            .collect()
    }

    /// # Errors
    /// An unknown name (listing the known ones) or invalid parameters.
    pub fn build(&self, name: &str, params: &ron::Value) -> Result<Box<dyn Reward<B>>, String> {
        let (factory, _) = self.factories.get(name).ok_or_else(|| {
            format!(
                "unknown reward `{name}`; known rewards: {}",
                self.names().join(", ")
            )
        })?;
        factory(params).map_err(|e| format!("reward `{name}`: {e}"))
    }
}

/// Deserialises a component's parameters, treating `()` / unit as "all defaults".
///
/// # Errors
/// The deserialiser's message, which names the offending field.
pub fn params<T: serde::de::DeserializeOwned + Default>(value: &ron::Value) -> Result<T, String> {
    match value {
        ron::Value::Unit => Ok(T::default()),
        ron::Value::Map(m) if m.is_empty() => Ok(T::default()),
        v => v.clone().into_rust::<T>().map_err(|e| e.to_string()),
    }
}
