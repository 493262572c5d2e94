//! `sd`: Stable Diffusion v1.x as a diffusion environment over latents.
//!
//! [`SdPipeline`] holds one checkpoint's frozen networks, loaded once per process and shared;
//! [`SdModel`] is the pipeline over a prompt list with a scheduler, on one backend; [`SdEnv`]
//! is what training uses: the pipeline behind an `Arc`, the prompts, the policy (a LoRA on the
//! UNet's attention projections, [`UNetLora`]) and the configs of the flow and field networks,
//! with its model on the inference backend and lifted onto the autodiff one.

pub mod config;
pub mod model;
pub mod multistep;
pub mod networks;
pub mod pipeline;

use std::path::Path;
use std::sync::Arc;

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use rand::rngs::StdRng;

use bench_core::SampleKind;
use bench_models::sd::{UNetConfig, UNetLora, LORA_FILE};

use crate::env::{DiffusionEnv, EnvInfo, Environment};
use crate::sampler::{SamplerConfig, Scheduler};
pub use config::{read_prompt_file, SdConfig};
pub use model::SdModel;
pub use networks::{SdFieldNet, SdStateNet};
pub use pipeline::SdPipeline;

/// Samples per evaluation batch: what bounds evaluation memory on SD v1.5.
const EVAL_BATCH: usize = 8;

pub struct SdEnv<B: AutodiffBackend> {
    config: SdConfig,
    device: B::Device,
    prompts: Vec<String>,
    pipeline: Arc<SdPipeline<B::InnerBackend>>,
    train: SdModel<B>,
    infer: SdModel<B::InnerBackend>,
    flow_net: UNetConfig,
    field_net: UNetConfig,
}

impl<B: AutodiffBackend> SdEnv<B> {
    /// The environment of `config` over a loaded pipeline (the process shares one per model).
    ///
    /// # Errors
    /// No prompts, a resolution the networks cannot take, bad auxiliary networks, or an invalid
    /// sampler.
    pub fn new(
        config: SdConfig,
        sampler: SamplerConfig,
        pipeline: Arc<SdPipeline<B::InnerBackend>>,
        device: B::Device,
    ) -> Result<Self, String> {
        let prompts = config.all_prompts()?;
        // An evaluation batch with both CFG branches: the least any run of this env needs.
        bench_core::validate::fits_in_memory(
            &format!("env.resolution = {}", config.resolution),
            pipeline.attention_bytes(config.resolution, 2 * EVAL_BATCH),
        )?;
        let infer = SdModel::new(
            &pipeline,
            &prompts,
            &config.negative_prompt,
            config.resolution,
            Scheduler::new(sampler)?,
        )
        .map_err(|e| format!("env.{e}"))?;
        let [channels, side, _] = infer.latent_shape();
        let context_dim = infer.context_dim();
        let aux = |c: &bench_models::sd::AuxNetConfig, name: &str| {
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
            train: SdModel::lift(&infer),
            infer,
            pipeline,
            prompts,
            device,
            config,
        })
    }

    /// Loads the pipeline itself (tests and one-off uses; sweeps share pipelines).
    ///
    /// # Errors
    /// As [`SdPipeline::load`] and [`SdEnv::new`].
    pub fn load(
        config: SdConfig,
        sampler: SamplerConfig,
        device: B::Device,
    ) -> Result<Self, String> {
        let pipeline = SdPipeline::load_in(&config.model, config.dtype, &device)
            .map_err(|e| format!("env.model: {e}"))?;
        Self::new(config, sampler, Arc::new(pipeline), device)
    }

    pub fn config(&self) -> &SdConfig {
        &self.config
    }

    pub fn pipeline(&self) -> &Arc<SdPipeline<B::InnerBackend>> {
        &self.pipeline
    }

    /// Latent shape `[channels, h, w]`.
    pub fn latent_shape(&self) -> [usize; 3] {
        self.infer.latent_shape()
    }
}

impl<B: AutodiffBackend> EnvInfo for SdEnv<B> {
    fn prompts(&self) -> &[String] {
        &self.prompts
    }

    fn sample_kind(&self) -> SampleKind {
        SampleKind::Images
    }
}

impl<B: AutodiffBackend> Environment<B> for SdEnv<B> {
    type Policy = UNetLora<B>;

    fn device(&self) -> &B::Device {
        &self.device
    }

    fn init_policy(&self, rng: &mut StdRng) -> UNetLora<B> {
        UNetLora::new(
            &self.train.unet().lora_layout(),
            self.config.lora,
            rng,
            &self.device,
        )
    }

    fn eval_batch(&self) -> usize {
        EVAL_BATCH
    }

    /// The LoRA as diffusers' `pytorch_lora_weights.safetensors`.
    fn export_policy(&self, policy: &UNetLora<B>, dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        policy.valid().save(&dir.join(LORA_FILE))
    }
}

impl<B: AutodiffBackend> DiffusionEnv<B> for SdEnv<B> {
    type StateNet = SdStateNet<B>;
    type FieldNet = SdFieldNet<B>;
    type Train = SdModel<B>;
    type Infer = SdModel<B::InnerBackend>;

    fn train(&self) -> &SdModel<B> {
        &self.train
    }

    fn infer(&self) -> &SdModel<B::InnerBackend> {
        &self.infer
    }

    fn init_state_net(&self, rng: &mut StdRng) -> SdStateNet<B> {
        SdStateNet::new(&self.flow_net, rng, &self.device)
    }

    fn init_field_net(&self, rng: &mut StdRng) -> SdFieldNet<B> {
        SdFieldNet::new(&self.field_net, rng, &self.device)
    }
}
