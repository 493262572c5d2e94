//! SD's configuration in a sweep (`env: Sd(...)`) and its prompt list.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use bench_models::sd::{AuxNetConfig, LoraConfig};

/// SD's configuration (`env: Sd(...)` in a sweep).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SdConfig {
    /// SD v1.x: a diffusers folder (`model_index.json`, `tokenizer/`, `text_encoder/`, `unet/`,
    /// `vae/`) or a single-file `.safetensors` checkpoint; `bench doctor --model PATH` checks one.
    pub model: PathBuf,
    /// Training prompts.
    pub prompts: Vec<String>,
    /// More prompts, one per non-empty line, after `prompts`.
    pub prompt_file: Option<PathBuf>,
    /// The prompt of CFG's unconditional branch (the papers: empty).
    pub negative_prompt: String,
    /// Image side in pixels (SD v1.5: 512); latents are smaller by the VAE's factor (8).
    pub resolution: usize,
    pub lora: LoraConfig,
    /// The flow / value network (DAG's F_φ: a small UNet's down path and a linear head).
    pub flow_net: AuxNetConfig,
    /// ∇-GFlowNet's residual flow score g_φ (a small UNet).
    pub field_net: AuxNetConfig,
}

impl Default for SdConfig {
    fn default() -> Self {
        Self {
            model: PathBuf::from("sd-v1-5"),
            prompts: vec![],
            prompt_file: None,
            negative_prompt: String::new(),
            resolution: 512,
            lora: LoraConfig::default(),
            flow_net: AuxNetConfig::default(),
            field_net: AuxNetConfig::default(),
        }
    }
}

impl SdConfig {
    /// `prompts` followed by the lines of `prompt_file`.
    ///
    /// # Errors
    /// An unreadable prompt file, or no prompt at all.
    pub fn all_prompts(&self) -> Result<Vec<String>, String> {
        let mut prompts = self.prompts.clone();
        if let Some(file) = &self.prompt_file {
            prompts.extend(read_prompt_file(file)?);
        }
        if prompts.is_empty() {
            return Err("env: give `prompts` or a `prompt_file`".into());
        }
        Ok(prompts)
    }
}

/// The non-empty lines of a prompt file, trimmed.
///
/// # Errors
/// The file cannot be read (the message names it).
pub fn read_prompt_file(file: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read prompt file {}: {e}", file.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}
