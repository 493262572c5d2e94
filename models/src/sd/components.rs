//! The four networks of an SD v1 checkpoint, loaded together from a diffusers folder.

use std::path::Path;

use burn::tensor::backend::Backend;

use super::{AutoencoderKl, UNet2DConditionModel};
use crate::clip::{ClipTextModel, ClipTokenizer};
use crate::weights::LoadError;

/// A diffusers SD folder's tokenizer, text encoder, UNet and VAE (the scheduler is the
/// sampler's business, the safety checker is not used).
#[derive(Debug)]
pub struct SdComponents<B: Backend> {
    pub tokenizer: ClipTokenizer,
    pub text_encoder: ClipTextModel<B>,
    pub unet: UNet2DConditionModel<B>,
    pub vae: AutoencoderKl<B>,
}

impl<B: Backend> SdComponents<B> {
    /// Loads `root/{tokenizer,text_encoder,unet,vae}`; `root/model_index.json` must exist, so
    /// that a wrong path fails on the folder, not on its first component.
    pub fn from_folder(root: &Path, device: &B::Device) -> Result<Self, LoadError> {
        let index = root.join("model_index.json");
        if !index.is_file() {
            return Err(LoadError::MissingFile {
                what: "diffusers folder (model_index.json)".into(),
                paths: vec![index],
            });
        }
        Ok(Self {
            tokenizer: ClipTokenizer::from_folder(&root.join("tokenizer"))?,
            text_encoder: ClipTextModel::from_folder(&root.join("text_encoder"), device)?,
            unet: UNet2DConditionModel::from_folder(&root.join("unet"), device)?,
            vae: AutoencoderKl::from_folder(&root.join("vae"), device)?,
        })
    }
}
