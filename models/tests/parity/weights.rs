//! The shared weight loader: its errors name what is wrong, and fp16 checkpoints load as f32.

use std::path::Path;

use crate::common::{compare, fixture, input, max_abs_diff};
use bench_models::clip::ClipTextModel;
use bench_models::sd::AutoencoderKl;
use bench_models::weights::{LoadError, TensorProblem};
use burn::backend::Flex;
use burn::tensor::{Int, Tensor, TensorData};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

type B = Flex;
/// A tensor as stored: dtype, shape, little-endian bytes.
type Raw = (Dtype, Vec<usize>, Vec<u8>);

/// Copies the fixture component folder `component` (config.json and `weights`) into `dir`,
/// passing each tensor through `edit` (name, dtype, shape, bytes) → None to drop it, or a new
/// name and tensor.
fn edited_copy(
    component: &str,
    weights: &str,
    dir: &Path,
    edit: impl Fn(&str, Dtype, Vec<usize>, Vec<u8>) -> Option<(String, Raw)>,
) {
    let src = fixture(component);
    std::fs::copy(src.join("config.json"), dir.join("config.json")).unwrap();
    let bytes = std::fs::read(src.join(weights)).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let tensors: Vec<(String, Raw)> = st
        .tensors()
        .into_iter()
        .filter_map(|(name, v)| edit(&name, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, (d, s, b))| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join(weights)).unwrap();
}

/// [`edited_copy`] of the tiny text encoder, names kept.
fn edited_text_encoder(dir: &Path, edit: impl Fn(&str, Dtype, Vec<usize>, Vec<u8>) -> Option<Raw>) {
    edited_copy(
        "sd_tiny/text_encoder",
        "model.safetensors",
        dir,
        |name, d, s, b| edit(name, d, s, b).map(|t| (name.to_string(), t)),
    );
}

fn load(dir: &Path) -> Result<ClipTextModel<B>, LoadError> {
    ClipTextModel::<B>::from_folder(dir, &Default::default())
}

#[test]
fn missing_and_misshapen_tensors_are_named_with_shapes_and_file() {
    let dir = tempfile::tempdir().unwrap();
    edited_text_encoder(dir.path(), |name, dtype, shape, data| match name {
        "text_model.encoder.layers.1.mlp.fc1.weight" => None,
        "text_model.encoder.layers.0.self_attn.q_proj.weight" => Some((dtype, vec![16, 64], data)),
        _ => Some((dtype, shape, data)),
    });
    let err = load(dir.path()).expect_err("a broken checkpoint must not load");
    let LoadError::Tensors { file, problems } = &err else {
        panic!("unexpected error {err}");
    };
    assert_eq!(file, &dir.path().join("model.safetensors"));
    assert_eq!(
        problems,
        &[
            TensorProblem::Shape {
                key: "text_model.encoder.layers.0.self_attn.q_proj.weight".into(),
                expected: vec![32, 32],
                found: vec![16, 64],
            },
            TensorProblem::Missing {
                key: "text_model.encoder.layers.1.mlp.fc1.weight".into(),
                expected: vec![37, 32],
            },
        ]
    );
    let message = err.to_string();
    for part in [
        "text_model.encoder.layers.0.self_attn.q_proj.weight",
        "expected shape [32, 32], found [16, 64]",
        "text_model.encoder.layers.1.mlp.fc1.weight",
        "missing (expected shape [37, 32])",
        &dir.path().join("model.safetensors").display().to_string(),
    ] {
        assert!(message.contains(part), "{part:?} not in:\n{message}");
    }
}

#[test]
fn a_missing_weights_file_names_the_path_and_where_to_get_sd15() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("sd_tiny/text_encoder/config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    let message = load(dir.path()).expect_err("no weights file").to_string();
    for name in ["model.safetensors", "diffusion_pytorch_model.safetensors"] {
        let expected = dir.path().join(name).display().to_string();
        assert!(message.contains(&expected), "{expected} not in {message}");
    }
    assert!(
        message.contains("stable-diffusion-v1-5/stable-diffusion-v1-5"),
        "{message}"
    );
    let missing_config = load(&dir.path().join("nowhere"))
        .expect_err("no config")
        .to_string();
    assert!(
        missing_config.contains("nowhere/config.json"),
        "{missing_config}"
    );
    let tokenizer =
        bench_models::clip::ClipTokenizer::from_folder(dir.path()).expect_err("no vocab.json");
    let not_sd = bench_models::sd::SdComponents::<B>::load(dir.path(), &Default::default());
    let index = dir.path().join("model_index.json").display().to_string();
    let not_sd = not_sd.expect_err("no model_index.json").to_string();
    assert!(not_sd.contains(&index), "{not_sd}");
    let vocab = dir.path().join("vocab.json").display().to_string();
    assert!(tokenizer.to_string().contains(&vocab), "{tokenizer}");
}

/// An fp16 checkpoint loads as f32: its outputs equal the fp32 model's up to fp16 rounding of
/// the weights (and differ from them, so the values were really converted, not reinterpreted).
#[test]
fn fp16_checkpoints_load_as_f32() {
    let dir = tempfile::tempdir().unwrap();
    edited_text_encoder(dir.path(), |_, dtype, shape, data| {
        assert_eq!(dtype, Dtype::F32);
        let values: Vec<f32> = data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let half = TensorData::new(values, shape.clone()).convert_dtype(burn::tensor::DType::F16);
        Some((Dtype::F16, shape, half.as_bytes().to_vec()))
    });
    let device = Default::default();
    let fp16 = load(dir.path()).unwrap();
    let fp32 = load(&fixture("sd_tiny/text_encoder")).unwrap();
    let ids: Vec<i64> = (0..77).map(|i| (i * 13) % 1000).collect();
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, 77]), &device);
    let out = |m: &ClipTextModel<B>| -> Vec<f64> {
        let h = m.forward(ids.clone()).into_data();
        assert_eq!(h.dtype, burn::tensor::DType::F32);
        h.to_vec::<f32>()
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect()
    };
    let err = max_abs_diff(&out(&fp16), &out(&fp32));
    assert!(
        err > 0.0 && err < 0.05,
        "fp16 vs fp32 max abs difference {err:.2e}"
    );
}

/// Older VAE files name the attention projections `query`/`key`/`value`/`proj_attn` (diffusers
/// renames them on load); such a file loads and decodes as the new names do.
#[test]
fn vae_with_old_attention_key_names_loads() {
    let dir = tempfile::tempdir().unwrap();
    let renamed = std::cell::Cell::new(0);
    edited_copy(
        "sd_tiny/vae",
        "diffusion_pytorch_model.safetensors",
        dir.path(),
        |name, d, s, b| {
            let old = [
                (".to_q.", ".query."),
                (".to_k.", ".key."),
                (".to_v.", ".value."),
                (".to_out.0.", ".proj_attn."),
            ]
            .iter()
            .fold(name.to_string(), |n, (new, old)| n.replace(new, old));
            renamed.set(renamed.get() + usize::from(old != name));
            Some((old, (d, s, b)))
        },
    );
    assert_eq!(
        renamed.get(),
        16,
        "2 attentions × 4 projections × (weight, bias)"
    );
    let vae = AutoencoderKl::<B>::from_folder(dir.path(), &Default::default()).unwrap();
    let file = "sd_tiny/vae.safetensors";
    let (err, _) = compare(
        vae.decode(input(file, "decode_input")),
        file,
        "decode_output",
    );
    assert!(err <= 1e-4, "max abs error {err:.2e}");
}
