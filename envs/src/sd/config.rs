//! SD's configuration in a sweep (`env: Sd(...)`) and its prompt list.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use bench_core::validate::{self, Invalid, Validate};
use bench_models::sd::{AuxNetConfig, LoraConfig};
use bench_models::Precision;

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
    /// The precision the frozen text encoder, UNet and VAE are held and run in: `F32` (the
    /// default), `Bf16` or `F16`, as diffusers' `weight_dtype`. The LoRA, auxiliary networks,
    /// optimizer state, log-probabilities and losses stay f32. Left out of the run id when
    /// f32, so that results from before the field existed resume.
    #[serde(skip_serializing_if = "Precision::is_f32")]
    pub dtype: Precision,
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
            dtype: Precision::F32,
        }
    }
}

impl Validate for SdConfig {
    fn validate(&self) -> Result<(), Invalid> {
        if self.model.as_os_str().is_empty() {
            return Err(Invalid::new(
                "model",
                "is empty: name a diffusers folder or a file",
            ));
        }
        validate::at_least("resolution", self.resolution, 8)?;
        validate::count_within("rank", self.lora.rank, 1, 4096).map_err(|e| e.within("lora"))?;
        validate::positive("alpha", self.lora.alpha).map_err(|e| e.within("lora"))?;
        for (name, net) in [("flow_net", &self.flow_net), ("field_net", &self.field_net)] {
            check_aux_net(net).map_err(|e| e.within(name))?;
        }
        Ok(())
    }
}

/// A small UNet's widths: positive, divisible by the group count, and of a size that fits.
fn check_aux_net(net: &AuxNetConfig) -> Result<(), Invalid> {
    if net.block_out_channels.is_empty() {
        return Err(Invalid::new(
            "block_out_channels",
            "needs at least one block",
        ));
    }
    validate::at_least("heads", net.heads, 1)?;
    validate::at_least("norm_num_groups", net.norm_num_groups, 1)?;
    for &c in &net.block_out_channels {
        if c == 0 || c % net.norm_num_groups != 0 || c % net.heads != 0 {
            return Err(Invalid::new(
                "block_out_channels",
                format!(
                    "has {c}: every width must be positive and divisible by norm_num_groups ({}) \
                     and heads ({})",
                    net.norm_num_groups, net.heads
                ),
            ));
        }
    }
    // ≈ 40 c² weights per block (resnets, attention, up/down convolutions), four f32 copies.
    let weights: f64 = net
        .block_out_channels
        .iter()
        .map(|&c| 40.0 * (c as f64).powi(2))
        .sum();
    validate::fits_in_memory("the network", weights * 16.0)
        .map_err(|e| Invalid::new("block_out_channels", e))
}

impl SdConfig {
    /// The same configuration with relative paths (model, prompt file) taken relative to
    /// `base` (the sweep file's folder), as a sweep means them.
    pub fn relative_to(&self, base: &Path) -> Self {
        let join = |p: &Path| {
            if p.is_relative() {
                base.join(p)
            } else {
                p.to_path_buf()
            }
        };
        Self {
            model: join(&self.model),
            prompt_file: self.prompt_file.as_deref().map(join),
            ..self.clone()
        }
    }

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
