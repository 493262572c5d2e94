//! `sd`: Stable Diffusion v1.x as a diffusion MDP over latents.
//!
//! The UNet, VAE and text encoder are loaded once from a diffusers folder and frozen; the policy
//! is a LoRA on the UNet's attention projections ([`UNetLora`]), so the base model is the same
//! UNet without it. Prompts (and the negative prompt of CFG's unconditional branch) are encoded
//! once at construction: the text encoder is never trained. States are latents `[N, 4, h, w]`
//! flattened to `[N, 4·h·w]`; [`DiffusionEnv::decode`] is the VAE, to images in [0, 1].

pub mod networks;

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{backend::AutodiffBackend, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use bench_models::sd::{
    AutoencoderKl, AuxNetConfig, LoraConfig, SdComponents, UNet2DConditionModel, UNetConfig,
    UNetLora,
};

use crate::env::{Denoiser, DiffusionEnv};
use crate::sampler::{SamplerConfig, Scheduler};
use networks::{SdFieldNet, SdStateNet};

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

/// Encodes prompts with a loaded SD's tokenizer and text encoder: `[N, 77, C]`, no graph.
pub fn encode_prompts<B: AutodiffBackend>(
    sd: &SdComponents<B>,
    prompts: &[String],
    device: &B::Device,
) -> Tensor<B, 3> {
    let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
    let ids: Tensor<B, 2, Int> = sd.tokenizer.encode_batch(&refs, device);
    sd.text_encoder.forward(ids).detach()
}

pub struct SdEnv<B: AutodiffBackend> {
    config: SdConfig,
    device: B::Device,
    scheduler: Scheduler,
    prompts: Vec<String>,
    unet: UNet2DConditionModel<B>,
    vae: AutoencoderKl<B>,
    /// Text-encoder states of the prompts `[P, 77, C]` and of the negative prompt `[1, 77, C]`.
    cond: Tensor<B, 3>,
    null: Tensor<B, 3>,
    /// Latent shape `[channels, h, w]`.
    latent: [usize; 3],
    flow_net: UNetConfig,
    field_net: UNetConfig,
}

impl<B: AutodiffBackend> SdEnv<B> {
    /// Loads the model (folder or single file) and encodes the prompts.
    ///
    /// # Errors
    /// Missing or mismatched weights (naming the files and where to get SD v1.5), no prompts,
    /// a resolution the networks cannot take, or an invalid sampler.
    pub fn new(
        config: SdConfig,
        sampler: SamplerConfig,
        device: B::Device,
    ) -> Result<Self, String> {
        Self::with_scheduler(config, Scheduler::new(sampler)?, device)
    }

    /// [`SdEnv::new`] with a scheduler built by the caller (e.g. [`Scheduler::for_sampling`]).
    ///
    /// # Errors
    /// As [`SdEnv::new`].
    pub fn with_scheduler(
        config: SdConfig,
        scheduler: Scheduler,
        device: B::Device,
    ) -> Result<Self, String> {
        let prompts = config.all_prompts()?;
        let sd = SdComponents::<B>::load(&config.model, &device)
            .map_err(|e| format!("env.model: {e}"))?;
        let cond = encode_prompts(&sd, &prompts, &device);
        let null = encode_prompts(&sd, std::slice::from_ref(&config.negative_prompt), &device);
        let context_dim = cond.dims()[2];
        let channels = sd.unet.conv_in.weight.shape().dims::<4>()[1];
        let vae_factor = 1 << (sd.vae.encoder.down_blocks.len() - 1);
        let unet_factor = 1 << (sd.unet.down_blocks.len() - 1);
        if config.resolution == 0 || !config.resolution.is_multiple_of(vae_factor * unet_factor) {
            return Err(format!(
                "env.resolution = {}: must be a positive multiple of {} (VAE factor {vae_factor} \
                 × UNet factor {unet_factor})",
                config.resolution,
                vae_factor * unet_factor
            ));
        }
        let side = config.resolution / vae_factor;
        let aux = |c: &AuxNetConfig, name: &str| {
            let unet = c
                .unet(channels, context_dim)
                .map_err(|e| format!("env.{name}.{e}"))?;
            let factor = 1 << (unet.block_out_channels.len() - 1);
            if !side.is_multiple_of(factor) {
                return Err(format!(
                    "env.{name}: {} blocks need latents of a multiple of {factor}, not {side}",
                    unet.block_out_channels.len()
                ));
            }
            Ok(unet)
        };
        Ok(Self {
            flow_net: aux(&config.flow_net, "flow_net")?,
            field_net: aux(&config.field_net, "field_net")?,
            unet: sd.unet.no_grad(),
            vae: sd.vae.no_grad(),
            cond,
            null,
            latent: [channels, side, side],
            prompts,
            scheduler,
            device,
            config,
        })
    }

    pub fn config(&self) -> &SdConfig {
        &self.config
    }

    /// Latent shape `[channels, h, w]`.
    pub fn latent_shape(&self) -> [usize; 3] {
        self.latent
    }

    pub fn unet(&self) -> &UNet2DConditionModel<B> {
        &self.unet
    }

    /// Flat states `[N, D]` as latents `[N, C, h, w]`.
    pub fn latents(&self, x: Tensor<B, 2>) -> Tensor<B, 4> {
        let [c, h, w] = self.latent;
        let n = x.dims()[0];
        x.reshape([n, c, h, w])
    }

    /// The text context of each row: a prompt's, or the negative prompt's for `None`.
    fn context(&self, prompts: Option<&[usize]>, n: usize) -> Tensor<B, 3> {
        match prompts {
            Some(p) => {
                let idx = Tensor::<B, 1, Int>::from_data(
                    TensorData::new(p.iter().map(|&i| i as i64).collect::<Vec<_>>(), [p.len()]),
                    &self.device,
                );
                self.cond.clone().select(0, idx)
            }
            None => self.null.clone().repeat_dim(0, n),
        }
    }

    /// Training-schedule timesteps `[N]` of the given per-row timestep values.
    fn timesteps(&self, t: impl Iterator<Item = usize>) -> Tensor<B, 1> {
        let t: Vec<f32> = t.map(|t| t as f32).collect();
        let n = t.len();
        Tensor::from_data(TensorData::new(t, [n]), &self.device)
    }

    /// ε of the UNet at training-schedule `timesteps` (one per row), for the given contexts.
    fn unet_eps(
        &self,
        net: Denoiser<'_, UNetLora<B>>,
        x: Tensor<B, 2>,
        timesteps: &[usize],
        context: Tensor<B, 3>,
    ) -> Tensor<B, 2> {
        let t = self.timesteps(timesteps.iter().copied());
        let lora = match net {
            Denoiser::Policy(p) => Some(p),
            Denoiser::Base => None,
        };
        let [n, d] = x.dims();
        self.unet
            .forward_with_lora(self.latents(x), t, context, lora)
            .reshape([n, d])
    }

    /// The guided ε at training-schedule timesteps (any sampler's, e.g. DPM-Solver's), with
    /// both CFG branches in one UNet call (unconditional rows first, as diffusers does).
    pub fn guided_eps_at(
        &self,
        net: Denoiser<'_, UNetLora<B>>,
        x: Tensor<B, 2>,
        timesteps: &[usize],
        prompts: &[usize],
    ) -> Tensor<B, 2> {
        let w = self.scheduler.guidance();
        let n = timesteps.len();
        if w == 1.0 {
            return self.unet_eps(net, x, timesteps, self.context(Some(prompts), n));
        }
        let context = Tensor::cat(
            vec![self.context(None, n), self.context(Some(prompts), n)],
            0,
        );
        let both: Vec<usize> = timesteps.iter().chain(timesteps).copied().collect();
        let eps = self.unet_eps(net, Tensor::cat(vec![x.clone(), x], 0), &both, context);
        let uncond = eps.clone().narrow(0, 0, n);
        let cond = eps.narrow(0, n, n);
        uncond.clone() + (cond - uncond).mul_scalar(w)
    }

    fn step_timesteps(&self, steps: &[usize]) -> Vec<usize> {
        let s = self.scheduler.schedule();
        steps.iter().map(|&k| s.timestep(k)).collect()
    }

    fn state_inputs(
        &self,
        x: Tensor<B, 2>,
        states: &[usize],
        prompts: &[usize],
    ) -> (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 3>) {
        let s = self.scheduler.schedule();
        let t = self.timesteps(states.iter().map(|&i| s.timestep_of_state(i)));
        (
            self.latents(x),
            t,
            self.context(Some(prompts), prompts.len()),
        )
    }
}

impl<B: AutodiffBackend> DiffusionEnv<B> for SdEnv<B> {
    type Policy = UNetLora<B>;
    type StateNet = SdStateNet<B>;
    type FieldNet = SdFieldNet<B>;

    fn device(&self) -> &B::Device {
        &self.device
    }

    fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    fn prompts(&self) -> &[String] {
        &self.prompts
    }

    fn dims(&self) -> usize {
        self.latent.iter().product()
    }

    fn init_policy(&self, rng: &mut StdRng) -> UNetLora<B> {
        UNetLora::new(&self.unet, self.config.lora, rng, &self.device)
    }

    fn init_state_net(&self, rng: &mut StdRng) -> SdStateNet<B> {
        SdStateNet::new(&self.flow_net, rng, &self.device)
    }

    fn init_field_net(&self, rng: &mut StdRng) -> SdFieldNet<B> {
        SdFieldNet::new(&self.field_net, rng, &self.device)
    }

    fn eps_unguided(
        &self,
        net: Denoiser<'_, UNetLora<B>>,
        x: Tensor<B, 2>,
        steps: &[usize],
        prompts: Option<&[usize]>,
    ) -> Tensor<B, 2> {
        let context = self.context(prompts, steps.len());
        self.unet_eps(net, x, &self.step_timesteps(steps), context)
    }

    /// Both CFG branches in one UNet call.
    fn eps(
        &self,
        net: Denoiser<'_, UNetLora<B>>,
        x: Tensor<B, 2>,
        steps: &[usize],
        prompts: &[usize],
    ) -> Tensor<B, 2> {
        self.guided_eps_at(net, x, &self.step_timesteps(steps), prompts)
    }

    fn state_value(
        &self,
        net: &SdStateNet<B>,
        x: Tensor<B, 2>,
        states: &[usize],
        prompts: &[usize],
    ) -> Tensor<B, 1> {
        let (x, t, ctx) = self.state_inputs(x, states, prompts);
        net.forward(x, t, ctx)
    }

    fn field(
        &self,
        net: &SdFieldNet<B>,
        x: Tensor<B, 2>,
        states: &[usize],
        prompts: &[usize],
    ) -> Tensor<B, 2> {
        let [n, d] = x.dims();
        let (x, t, ctx) = self.state_inputs(x, states, prompts);
        net.forward(x, t, ctx).reshape([n, d])
    }

    fn decode(&self, x0: Tensor<B, 2>) -> Tensor<B, 4> {
        self.vae.decode_latents(self.latents(x0))
    }
}
