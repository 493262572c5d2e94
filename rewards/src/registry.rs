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
    crate::image::register(&mut r);
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

/// Parses parameters that combine an objective's `own` fields (their names listed in
/// `own_keys`) with a config shared by a family of objectives. `shared_defaults` are this
/// objective's defaults for shared fields the user leaves out (a family's objectives differ
/// in, say, batch sizes). Both structs keep `deny_unknown_fields`.
///
/// # Errors
/// A field neither struct knows, or a value of the wrong type.
pub fn split_params<O, S>(
    value: &ron::Value,
    own_keys: &[&str],
    shared_defaults: &[(&str, ron::Value)],
) -> Result<(O, S), String>
where
    O: serde::de::DeserializeOwned + Default,
    S: serde::de::DeserializeOwned + Default,
{
    let mut shared = match value {
        ron::Value::Map(m) => m.clone(),
        ron::Value::Unit => ron::Map::new(),
        other => return Err(format!("parameters must be a struct, found {other:?}")),
    };
    let mut own = ron::Map::new();
    for key in own_keys {
        let key = ron::Value::String((*key).to_string());
        if let Some(v) = shared.remove(&key) {
            own.insert(key, v);
        }
    }
    for (key, v) in shared_defaults {
        let key = ron::Value::String((*key).to_string());
        if shared.get(&key).is_none() {
            shared.insert(key, v.clone());
        }
    }
    let own = params(&ron::Value::Map(own))?;
    let shared = params(&ron::Value::Map(shared)).map_err(|e| {
        if e.contains("Unexpected field") {
            format!("{e}, or one of: {}", own_keys.join(", "))
        } else {
            e
        }
    })?;
    Ok((own, shared))
}

#[cfg(test)]
mod split_tests {
    use super::split_params;
    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Own {
        k: usize,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Shared {
        batch: usize,
        lr: f64,
    }

    impl Default for Shared {
        fn default() -> Self {
            Self { batch: 8, lr: 0.1 }
        }
    }

    fn parse(text: &str) -> Result<(Own, Shared), String> {
        let value: ron::Value = ron::from_str(text).unwrap();
        split_params(&value, &["k"], &[("batch", ron::Value::from(16u64))])
    }

    #[test]
    fn fields_go_to_their_struct_and_objective_defaults_fill_the_shared_ones() {
        assert_eq!(
            parse("(k: 3, lr: 0.5)").unwrap(),
            (Own { k: 3 }, Shared { batch: 16, lr: 0.5 })
        );
        assert_eq!(
            parse("(batch: 2)").unwrap(),
            (Own { k: 0 }, Shared { batch: 2, lr: 0.1 })
        );
    }

    #[test]
    fn an_unknown_field_names_both_structs_fields() {
        let err = parse("(kk: 1)").unwrap_err();
        assert!(
            err.contains("field named `kk`") && err.ends_with("or one of: k"),
            "{err}"
        );
    }
}
