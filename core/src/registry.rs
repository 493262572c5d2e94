//! Plugins by name.

use std::collections::BTreeMap;

/// Entries by name with one-line descriptions; `kind` names what they are in messages
/// ("algorithm", "reward", "metric").
pub struct Registry<F> {
    kind: &'static str,
    entries: BTreeMap<String, (F, &'static str)>,
}

impl<F> Registry<F> {
    pub fn new(kind: &'static str) -> Self {
        Self {
            kind,
            entries: BTreeMap::new(),
        }
    }

    /// What the entries are, for messages.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Adds (or replaces) `name`.
    pub fn register(&mut self, name: &str, about: &'static str, entry: F) {
        self.entries.insert(name.to_string(), (entry, about));
    }

    pub fn names(&self) -> Vec<&str> {
        self.entries.keys().map(String::as_str).collect()
    }

    /// Names with their one-line descriptions.
    pub fn describe(&self) -> Vec<(&str, &'static str)> {
        self.entries
            .iter()
            .map(|(k, v)| (k.as_str(), v.1))
            .collect()
    }

    /// # Errors
    /// An unknown name; the message lists the known ones.
    pub fn get(&self, name: &str) -> Result<&F, String> {
        self.entries.get(name).map(|f| &f.0).ok_or_else(|| {
            format!(
                "unknown {kind} `{name}`; known {kind}s: {}",
                self.names().join(", "),
                kind = self.kind
            )
        })
    }
}
