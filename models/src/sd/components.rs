//! The four networks of an SD v1 checkpoint, loaded together from whichever layout a user has:
//! a diffusers folder (full precision or fp16 variant files, a text encoder saved by
//! transformers 4 or 5) or a single `.safetensors` file with the original key names.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::backend::Backend;

use super::single_file::{self, PartReport};
use super::{AutoencoderKl, UNet2DConditionModel, UNetConfig, VaeConfig};
use crate::clip::{text_encoder_keys, ClipTextConfig, ClipTextModel, ClipTokenizer};
use crate::weights::{
    check_mapped, check_safetensors, component_weights, read_header, read_json, FileReport,
    LoadError,
};

/// A diffusers SD folder's tokenizer, text encoder, UNet and VAE (the scheduler is the
/// sampler's business, the safety checker is not used).
#[derive(Debug)]
pub struct SdComponents<B: Backend> {
    pub tokenizer: ClipTokenizer,
    pub text_encoder: ClipTextModel<B>,
    pub unet: UNet2DConditionModel<B>,
    pub vae: AutoencoderKl<B>,
}

/// How an SD v1 checkpoint is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelLayout {
    /// A diffusers folder: `model_index.json`, `tokenizer/`, `text_encoder/`, `unet/`, `vae/`
    /// (and `scheduler/`), each network with its `config.json`.
    DiffusersFolder,
    /// One `.safetensors` file holding the three networks under the original CompVis/LDM key
    /// names (`model.diffusion_model.*`, `first_stage_model.*`, `cond_stage_model.transformer.*`);
    /// no configs, no tokenizer, no scheduler config (see [`single_file`]).
    SingleFile,
}

impl ModelLayout {
    /// What `path` is: a folder is a diffusers folder, a file a single-file checkpoint.
    ///
    /// # Errors
    /// [`LoadError::MissingFile`] when nothing is there (naming both layouts and where to get
    /// SD v1.5); [`LoadError::Layout`] for pickled checkpoints (`.ckpt`, `.pt`, `.pth`, `.bin`),
    /// which are not read, since unpickling can run arbitrary code.
    pub fn detect(path: &Path) -> Result<Self, LoadError> {
        if path.is_dir() {
            return Ok(Self::DiffusersFolder);
        }
        if !path.is_file() {
            return Err(LoadError::MissingFile {
                what: "SD v1 model (a diffusers folder, or a single-file .safetensors checkpoint)"
                    .into(),
                paths: vec![path.to_path_buf()],
            });
        }
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ["ckpt", "pt", "pth", "bin"].contains(&extension.to_ascii_lowercase().as_str()) {
            return Err(LoadError::Layout {
                path: path.to_path_buf(),
                message: "a pickled checkpoint: bench reads only .safetensors files (unpickling \
                          can run arbitrary code); take the checkpoint's .safetensors release \
                          (e.g. v1-5-pruned-emaonly.safetensors) or convert it"
                    .into(),
            });
        }
        Ok(Self::SingleFile)
    }
}

impl<B: Backend> SdComponents<B> {
    /// Loads SD v1 from `path`, a diffusers folder or a single-file checkpoint
    /// ([`ModelLayout::detect`] tells which). This is the entry point for every user-given
    /// model path (`--model`, a sweep's `env.model`).
    ///
    /// # Errors
    /// Missing files (named with where to get SD v1.5), unreadable files, tensors that do not fit
    /// (key, expected shape, found shape, file), files that are not SD v1.
    pub fn load(path: &Path, device: &B::Device) -> Result<Self, LoadError> {
        match ModelLayout::detect(path)? {
            ModelLayout::DiffusersFolder => Self::from_folder(path, device),
            ModelLayout::SingleFile => single_file::load(path, &read_header(path)?, device),
        }
    }

    /// Loads `root/{tokenizer,text_encoder,unet,vae}`; `root/model_index.json` must exist, so
    /// that a wrong path fails on the folder, not on its first component.
    fn from_folder(root: &Path, device: &B::Device) -> Result<Self, LoadError> {
        missing_index(root).map_or(Ok(()), Err)?;
        Ok(Self {
            tokenizer: ClipTokenizer::from_folder(&root.join("tokenizer"))?,
            text_encoder: ClipTextModel::from_folder(&root.join("text_encoder"), device)?,
            unet: UNet2DConditionModel::from_folder(&root.join("unet"), device)?,
            vae: AutoencoderKl::from_folder(&root.join("vae"), device)?,
        })
    }
}

/// What one component of a checkpoint holds, checked without loading it.
#[derive(Debug)]
pub enum ComponentCheck {
    /// The file is there (and, for the tokenizer, loads).
    Found,
    /// The weights file's header against the tensors the configured model expects.
    Weights(FileReport),
    /// A component of a single file: its key namespace, the config read off its shapes, and its
    /// tensors against that config.
    InFile(PartReport),
    /// Not in the checkpoint, and not needed: bench's own copy is used (the tokenizer of a
    /// single file).
    BuiltIn(String),
}

/// A checkpoint checked part by part (`bench doctor`).
#[derive(Debug)]
pub struct ModelCheck {
    /// `None` when there is nothing at the path (or a pickled file): the error is in `parts`.
    pub layout: Option<ModelLayout>,
    pub parts: Vec<(&'static str, Result<ComponentCheck, LoadError>)>,
    /// A single file's tensors that no component uses, by first key part (`model_ema`: 686):
    /// EMA copies, LDM's noise-schedule buffers and the like, which loading ignores.
    pub ignored: BTreeMap<String, usize>,
}

/// Checks a checkpoint in either layout from its files' headers (milliseconds for SD v1.5): for
/// a folder each of `model_index.json`, tokenizer, text encoder, UNet and VAE; for a single file
/// which of text encoder, UNet and VAE it holds, with their inferred configs, and the built-in
/// tokenizer.
pub fn check_model(path: &Path) -> ModelCheck {
    let layout = match ModelLayout::detect(path) {
        Ok(layout) => layout,
        Err(e) => {
            return ModelCheck {
                layout: None,
                parts: vec![("model", Err(e))],
                ignored: BTreeMap::new(),
            }
        }
    };
    match layout {
        ModelLayout::DiffusersFolder => ModelCheck {
            layout: Some(layout),
            parts: check_folder(path),
            ignored: BTreeMap::new(),
        },
        ModelLayout::SingleFile => match read_header(path) {
            Err(e) => ModelCheck {
                layout: Some(layout),
                parts: vec![("model", Err(e))],
                ignored: BTreeMap::new(),
            },
            Ok(header) => {
                let mut parts: Vec<_> = single_file::check(path, &header)
                    .into_iter()
                    .map(|(name, part)| (name, part.map(ComponentCheck::InFile)))
                    .collect();
                parts.push((
                    "tokenizer",
                    Ok(ComponentCheck::BuiltIn(
                        "SD v1's CLIP tokenizer (openai/clip-vit-large-patch14's BPE), built into \
                         bench: a single file holds none"
                            .into(),
                    )),
                ));
                ModelCheck {
                    layout: Some(layout),
                    parts,
                    ignored: single_file::other_keys(&header),
                }
            }
        },
    }
}

/// Checks a diffusers SD folder part by part (header reads only): for each of
/// `model_index.json`, tokenizer, text encoder, UNet and VAE, what was found or why it does not
/// fit.
pub fn check_folder(root: &Path) -> Vec<(&'static str, Result<ComponentCheck, LoadError>)> {
    type B = burn::backend::Flex;
    let device = Default::default();
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
            missing_index(root).map_or(Ok(ComponentCheck::Found), Err),
        ),
        (
            "tokenizer",
            ClipTokenizer::from_folder(&root.join("tokenizer")).map(|_| ComponentCheck::Found),
        ),
        (
            "text_encoder",
            weights("text_encoder", &|file| {
                let config: ClipTextConfig = read_json(&root.join("text_encoder/config.json"))?;
                let header = read_header(file)?;
                Ok(check_mapped(
                    &config.init::<B>(&device),
                    file,
                    &header,
                    "",
                    &text_encoder_keys(&header, ""),
                ))
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

/// The error for a folder without `model_index.json`. A folder that holds `.safetensors` files
/// instead is most likely a single-file download (`--local-dir` of
/// `v1-5-pruned-emaonly.safetensors`): the message names them, since the file is what to pass.
fn missing_index(root: &Path) -> Option<LoadError> {
    let index = root.join("model_index.json");
    if index.is_file() {
        return None;
    }
    let mut singles: Vec<String> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "safetensors"))
        .map(|p| format!("`{}`", p.display()))
        .collect();
    singles.sort();
    let what = if singles.is_empty() {
        "diffusers folder (model_index.json)".to_string()
    } else {
        format!(
            "diffusers folder (model_index.json; the folder holds {}: a single-file checkpoint is \
             loaded by giving the file itself)",
            singles.join(", ")
        )
    };
    Some(LoadError::MissingFile {
        what,
        paths: vec![index],
    })
}
