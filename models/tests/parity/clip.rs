//! CLIP tokenizer and text encoder against transformers (fixtures from tools/fixtures/).

use std::io::Read;

use crate::common::{assert_matches_real_sd15, compare, fixture, tensor};
use bench_models::clip::{ClipTextConfig, ClipTextModel, ClipTokenizer, CONTEXT_LENGTH};
use bench_models::weights::expected_tensors;
use burn::backend::Flex;
use burn::module::Module;
use burn::tensor::{Int, Tensor, TensorData};
use serde_json::Value;

type B = Flex;

/// The real CLIP vocabulary is committed gzipped (in the models crate, which embeds it); unpacked
/// it is a diffusers `tokenizer/` folder.
fn real_tokenizer() -> (ClipTokenizer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for name in ["vocab.json", "merges.txt"] {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("assets/clip/{name}.gz"));
        let gz = std::fs::File::open(path).unwrap();
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut text)
            .unwrap();
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    (ClipTokenizer::from_folder(dir.path()).unwrap(), dir)
}

/// The built-in tokenizer (what a single-file checkpoint gets) and the same vocabulary read as
/// a diffusers `tokenizer/` folder both give transformers' ids.
#[test]
fn tokenizer_matches_transformers_on_every_fixture_prompt() {
    let (folder, _dir) = real_tokenizer();
    for (what, tok) in [("folder", folder), ("built-in", ClipTokenizer::sd_v1())] {
        assert_eq!((tok.bos_id(), tok.eos_id()), (49406, 49407), "{what}");
        assert_eq!(tok.vocab_size(), 49408, "{what}");
        assert_transformers_ids(&tok, what);
    }
}

fn assert_transformers_ids(tok: &ClipTokenizer, what: &str) {
    assert_eq!(
        tok.encode("a photo of a cat")[..8],
        [49406, 320, 1125, 539, 320, 2368, 49407, 49407]
    );
    let text = std::fs::read_to_string(fixture("clip_tokenizer/prompts.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let prompts = json["prompts"].as_array().unwrap();
    let expected = json["ids"].as_array().unwrap();
    assert!(prompts.len() >= 30);
    let mut wrong = Vec::new();
    for (prompt, ids) in prompts.iter().zip(expected) {
        let prompt = prompt.as_str().unwrap();
        let ids: Vec<u32> = ids
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let got = tok.encode(prompt);
        assert_eq!(got.len(), CONTEXT_LENGTH);
        if got != ids {
            wrong.push(format!(
                "{prompt:?}:\n  got      {got:?}\n  expected {ids:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{what}:\n{}", wrong.join("\n"));
}

fn fixture_prompts(file: &str) -> Vec<String> {
    let bytes = std::fs::read(fixture(file)).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let json: Value = serde_json::from_str(&meta.metadata().as_ref().unwrap()["fixture"]).unwrap();
    serde_json::from_value(json["prompts"].clone()).unwrap()
}

/// The tiny pipeline's tokenizer (the real one cut to 1000 entries: BOS 998, EOS 999).
#[test]
fn tiny_tokenizer_folder_gives_the_pipeline_ids() {
    let tok = ClipTokenizer::from_folder(&fixture("sd_tiny/tokenizer")).unwrap();
    assert_eq!((tok.bos_id(), tok.eos_id()), (998, 999));
    let prompts = fixture_prompts("sd_tiny/text_encoder.safetensors");
    let (ids, shape) = tensor("sd_tiny/text_encoder.safetensors", "input_ids");
    assert_eq!(shape, [prompts.len(), CONTEXT_LENGTH]);
    let got: Vec<f64> = prompts
        .iter()
        .flat_map(|p| tok.encode(p))
        .map(f64::from)
        .collect();
    assert_eq!(got, ids);
}

/// Measured max abs error 9.9e-7 on hidden states up to |3.4| (Flex, f32).
#[test]
fn text_encoder_matches_transformers() {
    let device = Default::default();
    let model = ClipTextModel::<B>::from_folder(&fixture("sd_tiny/text_encoder"), &device).unwrap();
    let (ids, shape) = tensor("sd_tiny/text_encoder.safetensors", "input_ids");
    let ids: Vec<i64> = ids.iter().map(|&v| v as i64).collect();
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [shape[0], shape[1]]), &device);
    let (err, scale) = compare(
        model.forward(ids),
        "sd_tiny/text_encoder.safetensors",
        "last_hidden_state",
    );
    assert!(
        scale > 1.0,
        "the fixture should have activations of order 1"
    );
    assert!(err <= 1e-4, "max abs error {err:.2e}");
}

/// Our module expects exactly the tensors of SD v1.5's text encoder, with transformers'
/// parameter count.
#[test]
fn text_encoder_keys_match_the_real_sd15_checkpoint() {
    let model = ClipTextConfig::sd15().init::<B>(&Default::default());
    assert_matches_real_sd15("text_encoder", &expected_tensors(&model));
    assert_eq!(model.num_params(), 123_060_480);
}
