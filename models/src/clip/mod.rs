//! CLIP: the BPE tokenizer, the text transformer that SD v1 conditions on, and the vision
//! transformer that image rewards embed images with.

pub mod config_file;
pub mod encoder;
pub mod open_clip;
pub mod text_model;
pub mod text_projection;
pub mod tokenizer;
pub mod vision_model;

pub use open_clip::{load_open_clip, OpenClipConfig};
pub use text_model::{text_encoder_keys, ClipActivation, ClipTextConfig, ClipTextModel};
pub use text_projection::ClipTextModelWithProjection;
pub use tokenizer::{ClipTokenizer, CONTEXT_LENGTH};
pub use vision_model::{
    clip_normalise, normalise, ClipVisionConfig, ClipVisionModel, CLIP_MEAN, CLIP_STD,
};
