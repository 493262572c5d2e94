//! Trainable weights as safetensors (readable by any tool) beside burn's own record of the
//! same module, and small state files as RON.
//!
//! Why both: optimizer states are keyed by parameter ids, which only burn's record keeps;
//! resuming from it continues Adam's moments exactly, while the safetensors file is readable by
//! any tool. (A finished SD run's LoRA is exported separately, in diffusers' key names, under
//! `policy/`: that is the file `bench sample --lora` and diffusers read.)

use std::path::Path;

use burn::module::Module;
use burn::record::{BinFileRecorder, FullPrecisionSettings};
use burn::tensor::backend::Backend;
use burn_store::{ModuleSnapshot, SafetensorsStore};
use serde::{de::DeserializeOwned, Serialize};

/// Saves `module` as `<path>` (safetensors) and `<path without extension>.bin` (burn record).
///
/// # Errors
/// An I/O failure, with the path.
pub fn save_module<B: Backend, M: Module<B> + ModuleSnapshot<B>>(
    module: &M,
    path: &Path,
) -> Result<(), String> {
    let mut store = SafetensorsStore::from_file(path);
    module
        .save_into(&mut store)
        .map_err(|e| format!("saving {}: {e}", path.display()))?;
    module
        .clone()
        .save_file(
            path.with_extension(""),
            &BinFileRecorder::<FullPrecisionSettings>::new(),
        )
        .map_err(|e| format!("saving {}: {e}", path.with_extension("bin").display()))
}

/// Loads weights saved by [`save_module`], parameter ids included; without the burn record,
/// from the safetensors file alone, where every tensor must be present with its shape.
///
/// # Errors
/// A missing file, or missing or mismatched tensors (named in the message).
pub fn load_module<B: Backend, M: Module<B> + ModuleSnapshot<B>>(
    module: &mut M,
    path: &Path,
) -> Result<(), String> {
    let record = path.with_extension("bin");
    if record.exists() {
        let device = module.devices().into_iter().next().unwrap_or_default();
        *module = module
            .clone()
            .load_file(
                path.with_extension(""),
                &BinFileRecorder::<FullPrecisionSettings>::new(),
                &device,
            )
            .map_err(|e| format!("loading {}: {e}", record.display()))?;
        return Ok(());
    }
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
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    ron::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}
