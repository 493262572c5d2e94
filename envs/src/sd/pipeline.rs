//! `SdPipeline`: the frozen networks of one SD v1.x checkpoint — tokenizer, text encoder,
//! UNet, VAE — loaded once per process and shared (behind an `Arc`) by every environment,
//! evaluation and `bench sample` call that names the same model, whatever their samplers.

use std::path::{Path, PathBuf};

use burn::tensor::{backend::Backend, DType, Int, Tensor};

use bench_models::clip::{ClipTextModel, ClipTokenizer};
use bench_models::precision::{cast_module, to_dtype, Precision};
use bench_models::sd::{AutoencoderKl, SdComponents, UNet2DConditionModel};

/// SD v1's latent side (64, for 512-pixel images): what a single-file checkpoint is taken to be.
const SD_V1_SAMPLE_SIZE: usize = 64;

/// One SD v1.x checkpoint's networks, frozen, on one backend (the inner one: nothing here is
/// trained; training lifts the UNet and VAE into the autodiff graph).
#[derive(Debug)]
pub struct SdPipeline<B: Backend> {
    /// Where it was loaded from.
    pub path: PathBuf,
    pub tokenizer: ClipTokenizer,
    pub text_encoder: ClipTextModel<B>,
    pub unet: UNet2DConditionModel<B>,
    pub vae: AutoencoderKl<B>,
    /// The UNet's native latent side (`sample_size` of `unet/config.json`; SD v1's 64 for a
    /// single file, which carries no config).
    pub sample_size: usize,
}

impl<B: Backend> SdPipeline<B> {
    /// Loads a model: a diffusers folder (fp16 variants, transformers 4 or 5 text encoders) or
    /// a single-file checkpoint (see [`SdComponents::load`]).
    ///
    /// # Errors
    /// Missing or mismatched weights, naming the files and where to get SD v1.5.
    pub fn load(path: &Path, device: &B::Device) -> Result<Self, String> {
        Self::load_in(path, Precision::F32, device)
    }

    /// [`Self::load`] with the text encoder, UNet and VAE held in `precision` (they take f32
    /// inputs and give f32 outputs whatever it is).
    ///
    /// # Errors
    /// As [`Self::load`].
    pub fn load_in(path: &Path, precision: Precision, device: &B::Device) -> Result<Self, String> {
        let sd = SdComponents::<B>::load(path, device).map_err(|e| e.to_string())?;
        let sample_size = std::fs::read_to_string(path.join("unet/config.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|c| c.get("sample_size")?.as_u64())
            .map_or(SD_V1_SAMPLE_SIZE, |s| s as usize);
        Ok(Self {
            sample_size,
            path: path.to_path_buf(),
            tokenizer: sd.tokenizer,
            text_encoder: cast_module(sd.text_encoder, precision),
            unet: cast_module(sd.unet, precision),
            vae: cast_module(sd.vae, precision),
        })
    }

    /// Text-encoder states of `prompts`: `[N, 77, C]`, SD v1's cross-attention context.
    pub fn encode(&self, prompts: &[String]) -> Tensor<B, 3> {
        let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
        let device = self.unet.conv_in.weight.device();
        let ids: Tensor<B, 2, Int> = self.tokenizer.encode_batch(&refs, &device);
        to_dtype(self.text_encoder.forward(ids), DType::F32)
    }

    /// The resolution the model was trained at (SD v1.5: 512), what `bench sample` draws by
    /// default: the UNet's native latent side times the VAE's factor.
    pub fn native_resolution(&self) -> usize {
        self.sample_size * (1 << (self.vae.encoder.down_blocks.len() - 1))
    }

    /// Memory of the largest attention matrix one UNet call makes on `rows` latents of images
    /// `resolution` pixels wide (bytes, f32): heads × tokens² per row at the first block that
    /// attends. A lower bound of what sampling needs, to refuse sizes that cannot fit before the
    /// allocation aborts the process.
    pub fn attention_bytes(&self, resolution: usize, rows: usize) -> f64 {
        let vae_factor = 1 << (self.vae.encoder.down_blocks.len() - 1);
        let side = (resolution / vae_factor) as f64;
        self.unet
            .down_blocks
            .iter()
            .enumerate()
            .find_map(|(i, b)| {
                let heads = b
                    .attentions
                    .first()?
                    .transformer_blocks
                    .first()?
                    .attn1
                    .heads;
                let tokens = (side / f64::from(1u32 << i)).powi(2);
                Some(rows as f64 * heads as f64 * tokens * tokens * 4.0)
            })
            .unwrap_or(0.0)
    }

    /// Latent channels of the UNet.
    pub fn latent_channels(&self) -> usize {
        self.unet.conv_in.weight.shape().dims::<4>()[1]
    }

    /// The latent shape `[channels, h, w]` of images `resolution` pixels wide.
    ///
    /// # Errors
    /// A resolution the VAE and the UNet cannot take.
    pub fn latent_shape(&self, resolution: usize) -> Result<[usize; 3], String> {
        let vae_factor = 1 << (self.vae.encoder.down_blocks.len() - 1);
        let unet_factor = 1 << (self.unet.down_blocks.len() - 1);
        if resolution == 0 || !resolution.is_multiple_of(vae_factor * unet_factor) {
            return Err(format!(
                "resolution = {resolution}: must be a positive multiple of {} (VAE factor \
                 {vae_factor} × UNet factor {unet_factor})",
                vae_factor * unet_factor
            ));
        }
        let side = resolution / vae_factor;
        Ok([self.latent_channels(), side, side])
    }
}
