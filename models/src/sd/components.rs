//! The four networks of an SD v1 checkpoint, loaded together from a diffusers folder.

use std::path::Path;

use burn::tensor::backend::Backend;

use super::{AutoencoderKl, UNet2DConditionModel, UNetConfig, VaeConfig};
use crate::clip::{ClipTextConfig, ClipTextModel, ClipTokenizer};
use crate::weights::{check_safetensors, component_weights, read_json, FileReport, LoadError};

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

/// What one component of a folder holds, checked without loading it.
#[derive(Debug)]
pub enum ComponentCheck {
    /// The file is there (and, for the tokenizer, loads).
    Found,
    /// The weights file's header against the tensors the configured model expects.
    Weights(FileReport),
}

/// Checks a diffusers SD folder part by part (header reads only; a real SD v1.5 folder takes
/// milliseconds): for each of `model_index.json`, tokenizer, text encoder, UNet and VAE, what
/// was found or why it does not fit.
pub fn check_folder(root: &Path) -> Vec<(&'static str, Result<ComponentCheck, LoadError>)> {
    type B = burn::backend::Flex;
    let device = Default::default();
    let index = root.join("model_index.json");
    let weights = |folder: &str, check: &dyn Fn(&Path) -> Result<FileReport, LoadError>| {
        let folder = root.join(folder);
        let file = component_weights(&folder)?;
        check(&file).map(ComponentCheck::Weights)
    };
    let config_error = |path: &Path, message: String| LoadError::Read {
        path: path.to_path_buf(),
        message,
    };
    vec![
        (
            "model_index.json",
            if index.is_file() {
                Ok(ComponentCheck::Found)
            } else {
                Err(LoadError::MissingFile {
                    what: "diffusers folder (model_index.json)".into(),
                    paths: vec![index],
                })
            },
        ),
        (
            "tokenizer",
            ClipTokenizer::from_folder(&root.join("tokenizer")).map(|_| ComponentCheck::Found),
        ),
        (
            "text_encoder",
            weights("text_encoder", &|file| {
                let config: ClipTextConfig = read_json(&root.join("text_encoder/config.json"))?;
                check_safetensors(&config.init::<B>(&device), file, &[])
            }),
        ),
        (
            "unet",
            weights("unet", &|file| {
                let path = root.join("unet/config.json");
                let config: UNetConfig = read_json(&path)?;
                config.check().map_err(|m| config_error(&path, m))?;
                check_safetensors(&config.init::<B>(&device), file, &[])
            }),
        ),
        (
            "vae",
            weights("vae", &|file| {
                let path = root.join("vae/config.json");
                let config: VaeConfig = read_json(&path)?;
                config.check().map_err(|m| config_error(&path, m))?;
                check_safetensors(
                    &config.init::<B>(&device),
                    file,
                    &super::vae::OLD_ATTENTION_KEYS,
                )
            }),
        ),
    ]
}
