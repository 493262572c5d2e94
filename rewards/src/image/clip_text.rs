//! CLIP's text side as the image rewards use it: prompts to unit text embeddings, with the
//! tokenizer of the CLIP folder (or the built-in CLIP BPE, which every OpenAI and OpenCLIP-L
//! folder shares, where the folder holds none).

use std::path::Path;
use std::sync::Arc;

use burn::backend::Flex;
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};

use bench_core::BuildContext;
use bench_models::clip::{ClipTextModelWithProjection, ClipTokenizer, CONTEXT_LENGTH};
use bench_models::{cast_module, Precision};

use super::clip_image::{cache_key, clip_error, unit_rows, GET_CLIP_L14};
use crate::file_check::FileCheck;

/// The text tower with its projection and tokenizer.
pub struct TextTower<B: Backend> {
    pub model: ClipTextModelWithProjection<B>,
    pub tokenizer: Arc<ClipTokenizer>,
    /// Tokens per prompt: CLIP's 77, or fewer where the tower has fewer positions.
    pub length: usize,
    /// The embedding width.
    pub projection_dim: usize,
}

impl<B: Backend> TextTower<B> {
    /// # Errors
    /// Missing or misfit files, named with where to get the real ones; a tokenizer whose ids
    /// the tower has no embeddings for.
    pub fn load(clip: &Path, precision: Precision, device: &B::Device) -> Result<Self, String> {
        let (model, config) = ClipTextModelWithProjection::from_folder(clip, device)
            .map_err(|e| clip_error(clip, &e))?;
        let tokenizer = if clip.join("vocab.json").is_file() {
            ClipTokenizer::from_folder(clip).map_err(|e| clip_error(clip, &e))?
        } else {
            ClipTokenizer::sd_v1()
        };
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(format!(
                "clip = {}: its tokenizer has {} ids but the text tower embeds {}; put the \
                 folder's own vocab.json and merges.txt beside its config.json",
                clip.display(),
                tokenizer.vocab_size(),
                config.vocab_size
            ));
        }
        let projection_dim = model.text_projection.weight.dims()[1];
        Ok(Self {
            model: cast_module(model, precision),
            tokenizer: Arc::new(tokenizer),
            length: CONTEXT_LENGTH.min(config.max_position_embeddings),
            projection_dim,
        })
    }

    /// The ids of one prompt cut to [`TextTower::length`] (ending with end-of-text, as a
    /// tokenizer with that maximum length truncates) and its end-of-text position.
    fn ids(&self, prompt: &str) -> (Vec<i64>, usize) {
        let eos = self.tokenizer.eos_id();
        let mut ids = self.tokenizer.encode(prompt);
        ids.truncate(self.length);
        let position = match ids.iter().position(|&id| id == eos) {
            Some(p) => p,
            None => {
                let last = self.length - 1;
                ids[last] = eos;
                last
            }
        };
        (ids.into_iter().map(i64::from).collect(), position)
    }

    /// Unit text embeddings `[N, projection_dim]` of prompts, each distinct prompt run once.
    pub fn unit_embeddings(&self, prompts: &[String], device: &B::Device) -> Tensor<B, 2> {
        let mut distinct: Vec<&str> = Vec::new();
        let rows: Vec<i64> = prompts
            .iter()
            .map(|p| {
                let row = distinct
                    .iter()
                    .position(|d| *d == p.as_str())
                    .unwrap_or_else(|| {
                        distinct.push(p);
                        distinct.len() - 1
                    });
                row as i64
            })
            .collect();
        let (ids, positions): (Vec<Vec<i64>>, Vec<usize>) =
            distinct.iter().map(|p| self.ids(p)).unzip();
        let ids = Tensor::<B, 2, Int>::from_data(
            TensorData::new(ids.concat(), [distinct.len(), self.length]),
            device,
        );
        let embeddings = unit_rows(self.model.forward(ids, &positions));
        let rows = Tensor::<B, 1, Int>::from_data(TensorData::new(rows, [prompts.len()]), device);
        embeddings.select(0, rows)
    }
}

/// `bench doctor`'s check of the text tower of a CLIP folder and of its tokenizer (headers and
/// the vocabulary only).
pub fn check_text(clip: &Path) -> FileCheck {
    let checked = ClipTextModelWithProjection::<Flex>::check_folder(clip, &Default::default());
    let vocab_size = checked.as_ref().ok().map(|(c, _)| c.vocab_size);
    let mut check = FileCheck::from_report(
        "clip: CLIP text tower",
        clip.to_path_buf(),
        checked.map(|(c, r)| {
            let described = format!(
                "text transformer: {} layers of width {}, vocabulary of {}",
                c.num_hidden_layers, c.hidden_size, c.vocab_size
            );
            (described, r)
        }),
        GET_CLIP_L14,
    );
    if let (Ok(found), Some(vocab_size)) = (&check.outcome, vocab_size) {
        check.outcome = tokenizer_check(clip, vocab_size).map(|t| format!("{found}; {t}"));
    }
    check
}

/// The tokenizer the text tower would use, and whether its ids fit the tower.
fn tokenizer_check(clip: &Path, vocab_size: usize) -> Result<String, String> {
    let (tokenizer, which) = if clip.join("vocab.json").is_file() {
        let t = ClipTokenizer::from_folder(clip).map_err(|e| clip_error(clip, &e))?;
        (t, "the folder's tokenizer")
    } else {
        (
            ClipTokenizer::sd_v1(),
            "CLIP's built-in tokenizer (no vocab.json)",
        )
    };
    if tokenizer.vocab_size() > vocab_size {
        return Err(format!(
            "{which} has {} ids but the text tower embeds {vocab_size}",
            tokenizer.vocab_size()
        ));
    }
    Ok(which.to_string())
}

impl<B: AutodiffBackend> TextTower<B> {
    /// The same tower on the inner backend.
    pub fn inner(&self) -> TextTower<B::InnerBackend> {
        TextTower {
            model: self.model.valid(),
            tokenizer: self.tokenizer.clone(),
            length: self.length,
            projection_dim: self.projection_dim,
        }
    }

    /// The text tower of `clip`, loaded once per process.
    ///
    /// # Errors
    /// As [`TextTower::load`].
    pub fn cached(
        clip: &Path,
        precision: Precision,
        cx: &BuildContext<'_, B>,
    ) -> Result<Arc<Self>, String> {
        let what = format!("clip_text_{}", precision.name());
        cx.cache.get_or_load(&cache_key::<B>(&what, &[clip]), || {
            Self::load(clip, precision, &cx.device)
        })
    }
}
