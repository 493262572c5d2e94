//! Plugins by name: a generic [`Registry`] of factories, and the rewards' one.

use std::collections::BTreeMap;

use burn::tensor::backend::Backend;

use crate::reward::Reward;

/// Factories by name with one-line descriptions; `kind` names what they build in messages.
pub struct Registry<F> {
    kind: &'static str,
    factories: BTreeMap<String, (F, &'static str)>,
}

impl<F> Registry<F> {
    pub fn new(kind: &'static str) -> Self {
        Self {
            kind,
            factories: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) `name`.
    pub fn register(&mut self, name: &str, about: &'static str, factory: F) {
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
    /// An unknown name; the message lists the known ones.
    pub fn get(&self, name: &str) -> Result<&F, String> {
        self.factories.get(name).map(|f| &f.0).ok_or_else(|| {
            format!(
                "unknown {kind} `{name}`; known {kind}s: {}",
                self.names().join(", "),
                kind = self.kind
            )
        })
    }
}

/// Builds a reward from its `params` (a RON value; `()` or missing fields take defaults).
pub type RewardFactory<B> = fn(&ron::Value) -> Result<Box<dyn Reward<B>>, String>;

/// Rewards by name. Plugins add theirs with [`Registry::register`].
pub type RewardRegistry<B> = Registry<RewardFactory<B>>;

/// The built-in rewards.
pub fn builtin_rewards<B: Backend>() -> RewardRegistry<B> {
    let mut r = Registry::new("reward");
    crate::toy::register(&mut r);
    r
}

impl<B: Backend> RewardRegistry<B> {
    /// # Errors
    /// An unknown name (listing the known ones) or invalid parameters.
    pub fn build(&self, name: &str, params: &ron::Value) -> Result<Box<dyn Reward<B>>, String> {
        self.get(name)?(params).map_err(|e| format!("reward `{name}`: {e}"))
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
        v => v.clone().into_rust::<T>().map_err(|e| {
            let e = e.to_string();
            // ron::Value keeps no enum variant names: a bare `Base` arrives as `()`.
            if e.contains("Expected enum") {
                format!("{e} (write an option's choice as a string, e.g. \"Base\")")
            } else {
                e
            }
        }),
    }
}
