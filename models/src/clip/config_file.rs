//! One tower's config out of a transformers CLIP `config.json`, whichever class saved it.
//!
//! `CLIPModel` writes a `CLIPConfig`: each tower's fields nested under `text_config` /
//! `vision_config`, the shared `projection_dim` at the top. `CLIPTextModelWithProjection` and
//! `CLIPVisionModelWithProjection` write their tower's config flat, `projection_dim` included.
//! Absent fields (a nested config left out, or fields equal to the defaults) take transformers'
//! defaults, as `from_pretrained` reads them; `projection_dim`'s is 512 in all three classes.
//! A flat config of the other tower (`model_type: "clip_vision_model"` when the text tower is
//! asked for) is refused rather than misread.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::weights::{read_json, LoadError};

/// A tower config's sizes checked before a network is built from them, so that a config file
/// with zero heads, a zero patch or sizes that do not divide is an error, not a panic.
pub trait TowerConfig {
    /// What is wrong, in words.
    fn check(&self) -> Result<(), String>;
}

/// `hidden` splits into `heads` heads.
pub fn check_heads(hidden: usize, heads: usize) -> Result<(), String> {
    if hidden == 0 || heads == 0 || !hidden.is_multiple_of(heads) {
        return Err(format!(
            "hidden size {hidden} does not split into {heads} attention heads"
        ));
    }
    Ok(())
}

/// transformers' default `projection_dim` (`CLIPConfig`, `CLIPTextConfig`, `CLIPVisionConfig`).
const DEFAULT_PROJECTION: usize = 512;

/// The `tower` (`"text"` or `"vision"`) config and the projection width.
///
/// # Errors
/// An unreadable file, or fields of the wrong type.
pub fn tower_config<T: DeserializeOwned + TowerConfig>(
    path: &Path,
    tower: &str,
) -> Result<(T, usize), LoadError> {
    let file: serde_json::Value = read_json(path)?;
    let bad = |message: String| LoadError::Read {
        path: path.to_path_buf(),
        message,
    };
    let object = file
        .as_object()
        .ok_or_else(|| bad("not a CLIP config: not a JSON object".into()))?;
    let key = format!("{tower}_config");
    let nested = object.contains_key(&key)
        || object.get("model_type").and_then(|t| t.as_str()) == Some("clip");
    let model_type = object.get("model_type").and_then(|t| t.as_str());
    if let Some(other) = model_type.filter(|t| !nested && *t != format!("clip_{tower}_model")) {
        return Err(LoadError::Layout {
            path: path.to_path_buf(),
            message: format!(
                "a `{other}` config, with no {tower} tower (a CLIPModel folder holds both towers)"
            ),
        });
    }
    let fields = if nested {
        match object.get(&key) {
            None | Some(serde_json::Value::Null) => serde_json::json!({}),
            Some(v) => v.clone(),
        }
    } else {
        file.clone()
    };
    let config: T = serde_json::from_value(fields)
        .map_err(|e| bad(format!("not a CLIP {tower} config: {e}")))?;
    config
        .check()
        .map_err(|m| bad(format!("CLIP {tower} config: {m}")))?;
    let projection = match object.get("projection_dim") {
        None => DEFAULT_PROJECTION,
        Some(p) => p
            .as_u64()
            .and_then(|p| usize::try_from(p).ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| bad(format!("projection_dim {p} is not a positive integer")))?,
    };
    Ok((config, projection))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clip::{ClipTextConfig, ClipVisionConfig};

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn nested_flat_and_trimmed_configs_read_as_transformers_reads_them() {
        // A CLIPModel config that leaves its defaults out: ViT-B/32 towers, projection 512.
        let (_d, path) = write(r#"{"model_type": "clip", "vision_config": {"patch_size": 14}}"#);
        let (vision, projection) = tower_config::<ClipVisionConfig>(&path, "vision").unwrap();
        assert_eq!(
            (vision.patch_size, vision.hidden_size, projection),
            (14, 768, 512)
        );
        let (text, _) = tower_config::<ClipTextConfig>(&path, "text").unwrap();
        assert_eq!(text, ClipTextConfig::default());
        // A flat CLIPTextModelWithProjection config with its own projection.
        let (_d, path) =
            write(r#"{"model_type": "clip_text_model", "hidden_size": 64, "projection_dim": 32}"#);
        let (text, projection) = tower_config::<ClipTextConfig>(&path, "text").unwrap();
        assert_eq!((text.hidden_size, projection), (64, 32));
        // The other tower's flat config is refused, not misread.
        let err = tower_config::<ClipVisionConfig>(&path, "vision").unwrap_err();
        assert!(err.to_string().contains("no vision tower"), "{err}");
        // Sizes no network can have are refused, not built (they panicked in the encoder).
        for (text, tower) in [
            (
                r#"{"model_type": "clip", "vision_config": {"num_attention_heads": 0}}"#,
                "vision",
            ),
            (
                r#"{"model_type": "clip", "vision_config": {"patch_size": 0}}"#,
                "vision",
            ),
            (
                r#"{"model_type": "clip", "text_config": {"hidden_size": 30}}"#,
                "text",
            ),
            (
                r#"{"model_type": "clip", "text_config": {"max_position_embeddings": 0}}"#,
                "text",
            ),
        ] {
            let (_d, path) = write(text);
            let err = match tower {
                "vision" => tower_config::<ClipVisionConfig>(&path, tower).map(|_| ()),
                _ => tower_config::<ClipTextConfig>(&path, tower).map(|_| ()),
            }
            .unwrap_err();
            assert!(
                err.to_string().contains(&format!("CLIP {tower} config")),
                "{err}"
            );
        }
        let (_d, path) = write(r#"{"projection_dim": -3}"#);
        let err = tower_config::<ClipTextConfig>(&path, "text").unwrap_err();
        assert!(err.to_string().contains("projection_dim"), "{err}");
    }
}
