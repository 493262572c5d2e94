//! CLIP: the BPE tokenizer and the text transformer that SD v1 conditions on.

pub mod text_model;
pub mod tokenizer;

pub use text_model::{text_encoder_keys, ClipActivation, ClipTextConfig, ClipTextModel};
pub use tokenizer::{ClipTokenizer, CONTEXT_LENGTH};
