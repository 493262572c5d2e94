//! `SdPipeline`: the frozen networks of one SD v1.x checkpoint — tokenizer, text encoder,
//! UNet, VAE — loaded once per process and shared (behind an `Arc`) by every environment,
//! evaluation and `bench sample` call that names the same model, whatever their samplers.

use std::path::{Path, PathBuf};

use burn::tensor::{backend::Backend, Int, Tensor};

use bench_models::clip::{ClipTextModel, ClipTokenizer};
use bench_models::sd::{AutoencoderKl, SdComponents, UNet2DConditionModel};

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
}

impl<B: Backend> SdPipeline<B> {
    /// Loads a model: a diffusers folder (fp16 variants, transformers 4 or 5 text encoders) or
    /// a single-file checkpoint (see [`SdComponents::load`]).
    ///
    /// # Errors
    /// Missing or mismatched weights, naming the files and where to get SD v1.5.
    pub fn load(path: &Path, device: &B::Device) -> Result<Self, String> {
        let sd = SdComponents::<B>::load(path, device).map_err(|e| e.to_string())?;
        Ok(Self {
            path: path.to_path_buf(),
            tokenizer: sd.tokenizer,
            text_encoder: sd.text_encoder,
            unet: sd.unet,
            vae: sd.vae,
        })
    }

    /// Text-encoder states of `prompts`: `[N, 77, C]`, SD v1's cross-attention context.
    pub fn encode(&self, prompts: &[String]) -> Tensor<B, 3> {
        let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
        let device = self.unet.conv_in.weight.device();
        let ids: Tensor<B, 2, Int> = self.tokenizer.encode_batch(&refs, &device);
        self.text_encoder.forward(ids)
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
