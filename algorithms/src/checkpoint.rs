//! Trainable weights as safetensors (readable by any tool) and small state files as RON.

use std::path::Path;

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn_store::{ModuleSnapshot, SafetensorsStore};
use serde::{de::DeserializeOwned, Serialize};

/// # Errors
/// An I/O failure, with the path.
pub fn save_module<B: Backend, M: Module<B> + ModuleSnapshot<B>>(
    module: &M,
    path: &Path,
) -> Result<(), String> {
    let mut store = SafetensorsStore::from_file(path);
    module
        .save_into(&mut store)
        .map_err(|e| format!("saving {}: {e}", path.display()))
}

/// Loads weights saved by [`save_module`]; every tensor must be present with its shape.
///
/// # Errors
/// A missing file, or missing or mismatched tensors (named in the message).
pub fn load_module<B: Backend, M: Module<B> + ModuleSnapshot<B>>(
    module: &mut M,
    path: &Path,
) -> Result<(), String> {
    if !path.exists() {
        return Err(format!("missing checkpoint file {}", path.display()));
    }
    let mut store = SafetensorsStore::from_file(path);
    let result = module
        .load_from(&mut store)
        .map_err(|e| format!("loading {}: {e}", path.display()))?;
    if !result.errors.is_empty() || !result.missing.is_empty() {
        return Err(format!(
            "loading {}: missing {:?}, errors {:?}",
            path.display(),
            result.missing,
            result.errors
        ));
    }
    Ok(())
}

/// # Errors
/// An I/O or serialisation failure.
pub fn save_state<T: Serialize>(state: &T, path: &Path) -> Result<(), String> {
    let text = ron::ser::to_string_pretty(state, ron::ser::PrettyConfig::default())
        .map_err(|e| e.to_string())?;
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// # Errors
/// A missing or malformed file.
pub fn load_state<T: DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    ron::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}
