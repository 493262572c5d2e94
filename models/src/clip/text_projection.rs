//! CLIP's text tower with its projection (transformers' `CLIPTextModelWithProjection`, and the
//! text half of `CLIPModel`): the text embedding CLIP score compares images with.
//!
//! The embedding is the final-layer-normed hidden state at each prompt's first end-of-text
//! token, through a bias-free projection. transformers finds that token as the first position
//! holding `eos_token_id`, or as the argmax of the ids for configs with the legacy
//! `eos_token_id = 2` (OpenAI's checkpoints); both are the first end-of-text token for CLIP's
//! vocabulary, where it has the largest id. Attention is causal, so the padding after it (any
//! length, any id) does not change the embedding.

use std::path::Path;

use burn::module::Module;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::{backend::Backend, DType, Int, Tensor, TensorData};

use super::config_file::tower_config;
use super::text_model::{ClipTextConfig, ClipTextTransformer};
use crate::linear;
use crate::precision::to_dtype;
use crate::weights::{
    check_mapped, component_weights, load_mapped, read_header, FileKey, FileReport, LoadError,
};

/// The tower and its projection, named as transformers' keys.
#[derive(Module, Debug)]
pub struct ClipTextModelWithProjection<B: Backend> {
    pub text_model: ClipTextTransformer<B>,
    pub text_projection: Linear<B>,
}

impl ClipTextConfig {
    /// The text tower with a projection to `projection_dim`, zero weights.
    pub fn init_with_projection<B: Backend>(
        &self,
        projection_dim: usize,
        device: &B::Device,
    ) -> ClipTextModelWithProjection<B> {
        ClipTextModelWithProjection {
            text_model: self.init(device).text_model,
            text_projection: LinearConfig::new(self.hidden_size, projection_dim)
                .with_bias(false)
                .with_initializer(Initializer::Zeros)
                .init(device),
        }
    }
}

impl<B: Backend> ClipTextModelWithProjection<B> {
    /// The tower of a transformers CLIP folder (`config.json` and `model.safetensors`, saved
    /// from a `CLIPModel` or a `CLIPTextModelWithProjection`; a CLIPModel's vision tower is not
    /// read), with its config.
    ///
    /// # Errors
    /// Missing or unreadable files, or tensors missing or mis-shaped (named by key).
    pub fn from_folder(
        folder: &Path,
        device: &B::Device,
    ) -> Result<(Self, ClipTextConfig), LoadError> {
        let (config, projection) =
            tower_config::<ClipTextConfig>(&folder.join("config.json"), "text")?;
        let file = component_weights(folder)?;
        let model = load_mapped(
            config.init_with_projection(projection, device),
            &file,
            &|k: &str| FileKey::plain(k),
        )?;
        Ok((model, config))
    }

    /// Compares a CLIP folder's weights with the text tower its config describes, from the
    /// file's header only (`bench doctor`).
    ///
    /// # Errors
    /// Missing or unreadable config or weights.
    pub fn check_folder(
        folder: &Path,
        device: &B::Device,
    ) -> Result<(ClipTextConfig, FileReport), LoadError> {
        let (config, projection) =
            tower_config::<ClipTextConfig>(&folder.join("config.json"), "text")?;
        let file = component_weights(folder)?;
        let header = read_header(&file)?;
        let report = check_mapped(
            &config.init_with_projection::<B>(projection, device),
            &file,
            &header,
            "text_model.",
            &|k: &str| FileKey::plain(k),
        );
        Ok((config, report))
    }

    /// Text embeddings `[N, projection_dim]` (not normalised) of token ids `[N, L]` whose
    /// first end-of-text tokens sit at `eos_positions` (one per row, each < L).
    pub fn forward(&self, input_ids: Tensor<B, 2, Int>, eos_positions: &[usize]) -> Tensor<B, 2> {
        let [n, l] = input_ids.dims();
        assert_eq!(
            eos_positions.len(),
            n,
            "one end-of-text position per prompt"
        );
        let device = input_ids.device();
        let hidden = self.text_model.forward(input_ids);
        let width = hidden.dims()[2];
        let rows: Vec<i64> = eos_positions
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                assert!(p < l, "end-of-text position {p} outside {l} tokens");
                (i * l + p) as i64
            })
            .collect();
        let rows = Tensor::<B, 1, Int>::from_data(TensorData::new(rows, [n]), &device);
        let pooled = hidden.reshape([n * l, width]).select(0, rows);
        // In f32 whatever the weights' precision (a half-precision tower's output is cast).
        to_dtype(linear::forward(&self.text_projection, pooled), DType::F32)
    }
}
