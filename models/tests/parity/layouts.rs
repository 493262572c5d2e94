//! SD v1 in the layouts users have: a text encoder saved by transformers 5, diffusers' fp16
//! variant files, and single-file checkpoints with the original (LDM) key names. Each loads to
//! exactly the tensors of its reference, and a single file's inferred configs are the reference
//! folder's (fixtures from tools/fixtures/make_sd_tiny.py; the single file was loaded back by
//! diffusers' `from_single_file` there).

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::fixture;
use bench_models::clip::{ClipTextConfig, ClipTextModel};
use bench_models::sd::single_file::{self, infer_configs, TEXT_PREFIX, UNET_PREFIX, VAE_PREFIX};
use bench_models::sd::{SdComponents, UNetConfig, VaeConfig};
use bench_models::weights::{
    check_mapped, read_header, read_json, Header, LoadError, TensorInfo, TensorProblem,
};
use burn::backend::Flex;
use burn::module::Module;
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot};
use burn::tensor::DType;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use sha2::{Digest, Sha256};

type B = Flex;
const SINGLE: &str = "sd_layouts/tiny_ldm.safetensors";

/// A module's tensors as PyTorch sees them (names, layouts), as f32 values.
fn tensors<M: Module<B>>(module: &M) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    module
        .collect(None, Some(Box::new(BurnToPyTorchAdapter)), false)
        .into_iter()
        .map(|s| {
            let data = s.to_data().unwrap();
            assert_eq!(data.dtype, DType::F32, "{}", s.full_path());
            (
                s.full_path(),
                (s.shape.to_vec(), data.to_vec::<f32>().unwrap()),
            )
        })
        .collect()
}

/// `a` equals `b` exactly, tensor by tensor; returns how many tensors were compared.
fn assert_same<M: Module<B>>(a: &M, b: &M, what: &str) -> usize {
    let (a, b) = (tensors(a), tensors(b));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "{what}"
    );
    for (key, value) in &a {
        assert!(value == &b[key], "{what}: `{key}` differs");
    }
    a.len()
}

/// Copies `src` (a fixture folder) into `dst`, recursively.
fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), to).unwrap();
        }
    }
}

/// A tensor as stored: dtype, shape, little-endian bytes.
type Raw = (Dtype, Vec<usize>, Vec<u8>);

/// Writes `dst`: the tensors of the safetensors file `src`, passed through `edit` (name, tensor)
/// → the tensors to write instead (none to drop it, several to add some).
fn rewrite(src: &Path, dst: &Path, edit: impl Fn(&str, Raw) -> Vec<(String, Raw)>) {
    let bytes = std::fs::read(src).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let tensors: Vec<(String, Raw)> = st
        .tensors()
        .into_iter()
        .flat_map(|(name, v)| edit(&name, (v.dtype(), v.shape().to_vec(), v.data().to_vec())))
        .collect();
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, (d, s, b))| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, dst).unwrap();
}

fn single_file() -> SdComponents<B> {
    SdComponents::<B>::load(&fixture(SINGLE), &Default::default()).unwrap()
}

/// transformers 5 writes `embeddings.…` where transformers 4 wrote `text_model.embeddings.…`
/// (with `save_original_format=False`; its default save is transformers 4's file byte for byte,
/// see the fixture's report.json). Both load to the same tensors.
#[test]
fn transformers5_text_encoder_loads_the_same_tensors() {
    let header = read_header(&fixture("sd_layouts/tf5_text_encoder/model.safetensors")).unwrap();
    assert!(header.contains_key("embeddings.token_embedding.weight"));
    assert!(!header.keys().any(|k| k.starts_with("text_model.")));
    let device = Default::default();
    let ours =
        ClipTextModel::<B>::from_folder(&fixture("sd_layouts/tf5_text_encoder"), &device).unwrap();
    let reference =
        ClipTextModel::<B>::from_folder(&fixture("sd_tiny/text_encoder"), &device).unwrap();
    assert_eq!(assert_same(&ours, &reference, "tf5 text encoder"), 36);
}

/// A config field equal to transformers' default may be absent; it then means that default.
/// Our defaults are `CLIPTextConfig()`'s as transformers 5 reports them.
#[test]
fn text_encoder_config_fields_default_as_transformers_does() {
    let text = std::fs::read_to_string(fixture("sd_layouts/tf5_text_encoder/report.json")).unwrap();
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    let defaults: ClipTextConfig =
        serde_json::from_value(report["clip_text_config_defaults"].clone()).unwrap();
    assert_eq!(ClipTextConfig::default(), defaults);

    let full: ClipTextConfig =
        read_json(&fixture("sd_layouts/tf5_text_encoder/config.json")).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("sd_layouts/tf5_text_encoder/config.json")).unwrap(),
    )
    .unwrap();
    let object = json.as_object_mut().unwrap();
    for (key, value) in report["clip_text_config_defaults"].as_object().unwrap() {
        if object.get(key) == Some(value) {
            object.remove(key);
        }
    }
    // The tiny encoder's context length, activation and eps are transformers' defaults.
    for key in ["max_position_embeddings", "hidden_act", "layer_norm_eps"] {
        assert!(!object.contains_key(key), "{key}");
    }
    let sparse: ClipTextConfig = serde_json::from_value(json).unwrap();
    assert_eq!(sparse, full);
}

/// The fp16 variant folder (`*.fp16.safetensors`, as `save_pretrained(variant="fp16")` writes):
/// diffusers' UNet and VAE variant files are sd_tiny's fp16 files byte for byte (checked by the
/// fixture script), so they are copied in here under the variant names.
fn fp16_variant_folder(dir: &Path) {
    copy_dir(&fixture("sd_layouts/fp16_variant"), dir);
    for part in ["unet", "vae"] {
        std::fs::copy(
            fixture(&format!(
                "sd_tiny/{part}/diffusion_pytorch_model.safetensors"
            )),
            dir.join(format!("{part}/diffusion_pytorch_model.fp16.safetensors")),
        )
        .unwrap();
    }
}

/// A folder with only fp16 variant files loads: UNet and VAE equal sd_tiny's (also fp16), the
/// text encoder sd_tiny's fp32 one rounded to fp16. With the full-precision file beside the
/// variant, the full-precision one is loaded.
#[test]
fn fp16_variant_folder_loads_and_full_precision_is_preferred() {
    let tmp = tempfile::tempdir().unwrap();
    fp16_variant_folder(tmp.path());
    let device = Default::default();
    let variant = SdComponents::<B>::load(tmp.path(), &device).unwrap();
    let reference = SdComponents::<B>::load(&fixture("sd_tiny"), &device).unwrap();
    assert_same(&variant.unet, &reference.unet, "unet");
    assert_same(&variant.vae, &reference.vae, "vae");
    let rounded = reference.text_encoder.clone().map(&mut RoundToF16);
    assert_same(&variant.text_encoder, &rounded, "fp16 text encoder");
    // fp16 rounding changes the fp32 encoder's weights, so the comparison above says something.
    assert!(tensors(&variant.text_encoder) != tensors(&reference.text_encoder));

    std::fs::copy(
        fixture("sd_tiny/text_encoder/model.safetensors"),
        tmp.path().join("text_encoder/model.safetensors"),
    )
    .unwrap();
    let both = SdComponents::<B>::load(tmp.path(), &device).unwrap();
    assert_same(
        &both.text_encoder,
        &reference.text_encoder,
        "fp32 preferred",
    );
}

/// Rounds every float parameter to fp16 and back.
struct RoundToF16;

impl burn::module::ModuleMapper<B> for RoundToF16 {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<burn::tensor::Tensor<B, D>>,
    ) -> burn::module::Param<burn::tensor::Tensor<B, D>> {
        param.map(|t| t.cast(DType::F16).cast(DType::F32))
    }
}

/// Without any weights file, the error names every accepted file name.
#[test]
fn a_missing_weights_file_names_every_accepted_name() {
    let tmp = tempfile::tempdir().unwrap();
    fp16_variant_folder(tmp.path());
    std::fs::remove_file(
        tmp.path()
            .join("vae/diffusion_pytorch_model.fp16.safetensors"),
    )
    .unwrap();
    let err = SdComponents::<B>::load(tmp.path(), &Default::default())
        .expect_err("no VAE weights")
        .to_string();
    for name in bench_models::weights::WEIGHT_FILE_NAMES {
        let path = tmp.path().join("vae").join(name).display().to_string();
        assert!(err.contains(&format!("`{path}`")), "{path} not in {err}");
    }
}

/// The configs read off the single file's shapes (SD v1's choices where shapes cannot tell)
/// are the configs of the diffusers folder it was converted from.
#[test]
fn single_file_configs_equal_the_reference_folders() {
    let file = fixture(SINGLE);
    let configs = infer_configs(&file, &read_header(&file).unwrap()).unwrap();
    let reference =
        |part: &str| fixture(&format!("sd_layouts/tiny_ldm_reference/{part}/config.json"));
    assert_eq!(
        configs.unet,
        read_json::<UNetConfig>(&reference("unet")).unwrap()
    );
    assert_eq!(
        configs.vae,
        read_json::<VaeConfig>(&reference("vae")).unwrap()
    );
    assert_eq!(
        configs.text_encoder,
        read_json::<ClipTextConfig>(&reference("text_encoder")).unwrap()
    );
}

/// Every tensor of the loaded single file equals, in fp16 bytes, the tensor diffusers'
/// `from_single_file` loaded under the same (diffusers) name, and the key sets are equal.
#[test]
fn single_file_loads_the_tensors_diffusers_loads() {
    let sd = single_file();
    let text =
        std::fs::read_to_string(fixture("sd_layouts/tiny_ldm_reference/tensors.json")).unwrap();
    let manifest: BTreeMap<String, BTreeMap<String, (Vec<usize>, String)>> =
        serde_json::from_str(&text).unwrap();
    let ours = [
        ("text_encoder", tensors(&sd.text_encoder)),
        ("unet", tensors(&sd.unet)),
        ("vae", tensors(&sd.vae)),
    ];
    let mut count = 0;
    for (part, ours) in ours {
        let expected = &manifest[part];
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "{part}"
        );
        for (key, (shape, values)) in ours {
            let bytes =
                burn::tensor::TensorData::new(values, shape.clone()).convert_dtype(DType::F16);
            let hash: String = Sha256::digest(bytes.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(
                (&shape, &hash),
                (&expected[&key].0, &expected[&key].1),
                "{part} `{key}`"
            );
            count += 1;
        }
    }
    assert_eq!(count, 36 + 206 + 120);
}

/// What real single files also hold or spell otherwise loads to the same tensors: a text encoder
/// without `text_model.` (files made with transformers versions that had no such wrapper), EMA
/// weights and LDM's schedule buffers (ignored), VAE attention weights stored as linear `[c, c]`
/// instead of 1×1 convolutions.
#[test]
fn single_file_variants_load_the_same_tensors() {
    let plain = single_file();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("variant.safetensors");
    rewrite(&fixture(SINGLE), &file, |name, (d, s, b)| {
        let name = name.replacen(
            "cond_stage_model.transformer.text_model.",
            "cond_stage_model.transformer.",
            1,
        );
        let mut out = Vec::new();
        if name.starts_with(UNET_PREFIX) {
            // LDM's EMA copy: `model_ema.` + the key without its dots after the first part.
            let flat: String = name["model.".len()..].split('.').collect();
            out.push((
                format!("model_ema.{flat}"),
                (d, s.clone(), vec![0u8; b.len()]),
            ));
        }
        let s = if name.contains(".mid.attn_1.") && s.len() == 4 {
            s[..2].to_vec()
        } else {
            s
        };
        out.push((name, (d, s, b)));
        out
    });
    // Schedule buffers and the old position_ids buffer.
    let extra = tmp.path().join("extra.safetensors");
    rewrite(&file, &extra, |name, t| {
        let mut out = vec![(name.to_string(), t)];
        if name == "first_stage_model.quant_conv.bias" {
            let f32s = |n: usize| (Dtype::F32, vec![n], vec![0u8; 4 * n]);
            out.push(("alphas_cumprod".into(), f32s(1000)));
            out.push(("model_ema.decay".into(), f32s(1)));
            out.push((
                "cond_stage_model.transformer.embeddings.position_ids".into(),
                (Dtype::I64, vec![1, 77], vec![0u8; 8 * 77]),
            ));
        }
        out
    });
    let header = read_header(&extra).unwrap();
    assert!(header.contains_key("cond_stage_model.transformer.embeddings.token_embedding.weight"));
    assert_eq!(
        header["first_stage_model.encoder.mid.attn_1.q.weight"].shape,
        [32, 32]
    );
    let variant = SdComponents::<B>::load(&extra, &Default::default()).unwrap();
    assert_same(&variant.text_encoder, &plain.text_encoder, "text encoder");
    assert_same(&variant.unet, &plain.unet, "unet");
    assert_same(&variant.vae, &plain.vae, "vae");
    let ignored = single_file::other_keys(&header);
    assert_eq!(ignored["model_ema"], 206 + 1);
    assert_eq!(ignored["alphas_cumprod"], 1);
}

/// A header built from the (key, shape) list of a real SD v1.5 single file
/// (`fixtures/sd15_ldm_keys.json`: SD v1.5's architecture in LDM names, checked against diffusers'
/// converters by the fixture script).
fn real_sd15_header() -> Header {
    let text = std::fs::read_to_string(fixture("sd15_ldm_keys.json")).unwrap();
    let parts: BTreeMap<String, Vec<(String, Vec<usize>)>> = serde_json::from_str(&text).unwrap();
    parts
        .into_values()
        .flatten()
        .map(|(key, shape)| {
            (
                key,
                TensorInfo {
                    dtype: "F16".into(),
                    shape,
                },
            )
        })
        .collect()
}

/// On SD v1.5's real key layout (4 blocks × 2 layers, 3 cross-attention blocks, the upsamplers
/// at `output_blocks.{2,5,8}` behind a resnet or a transformer, `nin_shortcut`s, 512-wide 1×1
/// attention convolutions in the VAE), the inferred configs are SD v1.5's and the key mapping of
/// each network names exactly the file's tensors with the file's shapes.
#[test]
fn real_sd15_single_file_keys_and_configs() {
    let header = real_sd15_header();
    let file = Path::new("v1-5-pruned-emaonly.safetensors");
    let configs = infer_configs(file, &header).unwrap();
    assert_eq!(configs.unet, UNetConfig::sd15());
    assert_eq!(configs.vae, VaeConfig::sd15());
    assert_eq!(configs.text_encoder, ClipTextConfig::sd15());
    let device = Default::default();
    let mut mapped = 0;
    for (name, prefix, report) in [
        (
            "text_encoder",
            TEXT_PREFIX,
            check_mapped(
                &configs.text_encoder.init::<B>(&device),
                file,
                &header,
                TEXT_PREFIX,
                &bench_models::clip::text_encoder_keys(&header, TEXT_PREFIX),
            ),
        ),
        (
            "unet",
            UNET_PREFIX,
            check_mapped(
                &configs.unet.init::<B>(&device),
                file,
                &header,
                UNET_PREFIX,
                &single_file::unet_keys(&configs.unet),
            ),
        ),
        (
            "vae",
            VAE_PREFIX,
            check_mapped(
                &configs.vae.init::<B>(&device),
                file,
                &header,
                VAE_PREFIX,
                &single_file::vae_keys(&configs.vae),
            ),
        ),
    ] {
        assert!(report.problems.is_empty(), "{name}: {:?}", report.problems);
        // Every tensor of the component is used: as many module tensors as file tensors.
        let in_file = header.keys().filter(|k| k.starts_with(prefix)).count();
        assert_eq!(report.tensors, in_file, "{name}");
        mapped += in_file;
    }
    assert_eq!(mapped, header.len());
    assert_eq!(mapped, 686 + 248 + 196);
}

/// The unet's module tensors map one to one onto the file's keys (no two module tensors on one
/// file key), on the real layout.
#[test]
fn real_sd15_mapping_is_one_to_one() {
    let header = real_sd15_header();
    let map = single_file::unet_keys(&UNetConfig::sd15());
    let module = UNetConfig::sd15().init::<B>(&Default::default());
    let keys: std::collections::BTreeSet<String> = bench_models::weights::expected_tensors(&module)
        .into_iter()
        .map(|(k, _)| map(&k).key)
        .collect();
    let file: std::collections::BTreeSet<String> = header
        .keys()
        .filter(|k| k.starts_with(UNET_PREFIX))
        .cloned()
        .collect();
    assert_eq!(keys, file);
}

/// A mis-shaped or missing tensor of a single file is named by its key in the file, with the
/// expected and found shapes and the file; a file that is not safetensors, a file without a VAE,
/// a pickled checkpoint and a path with nothing there each say what is wrong.
#[test]
fn broken_single_files_are_reported_by_key_and_file() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("broken.safetensors");
    let q = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight";
    let fc = "cond_stage_model.transformer.text_model.encoder.layers.1.mlp.fc2.bias";
    rewrite(&fixture(SINGLE), &file, |name, (d, s, b)| match name {
        _ if name == q => vec![(name.into(), (d, vec![16, 64], b))],
        _ if name == fc => vec![],
        _ => vec![(name.into(), (d, s, b))],
    });
    let load = |p: &Path| SdComponents::<B>::load(p, &Default::default());
    let err = load(&file).expect_err("a broken file must not load");
    let LoadError::Tensors { file: at, problems } = &err else {
        panic!("unexpected error {err}");
    };
    assert_eq!(at, &file);
    // The text encoder loads first.
    assert_eq!(
        problems,
        &[TensorProblem::Missing {
            key: fc.into(),
            expected: vec![12],
        }]
    );
    let message = err.to_string();
    assert!(
        message.contains(fc) && message.contains(&file.display().to_string()),
        "{message}"
    );

    let unet_only = tmp.path().join("unet.safetensors");
    rewrite(&file, &unet_only, |name, t| {
        if name.starts_with(UNET_PREFIX) || name.starts_with(TEXT_PREFIX) {
            vec![(name.into(), t)]
        } else {
            vec![]
        }
    });
    let header = read_header(&unet_only).unwrap();
    let checks = single_file::check(&unet_only, &header);
    let report = &checks[1].1.as_ref().unwrap().report;
    assert_eq!(
        report.problems,
        [TensorProblem::Shape {
            key: q.into(),
            expected: vec![32, 32],
            found: vec![16, 64],
        }]
    );
    let no_vae = load(&unet_only).expect_err("no VAE").to_string();
    assert!(
        no_vae.contains("no VAE in this file") && no_vae.contains("first_stage_model.*"),
        "{no_vae}"
    );

    let garbage = tmp.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not a checkpoint at all").unwrap();
    let err = load(&garbage).expect_err("garbage").to_string();
    assert!(err.contains("not a safetensors file"), "{err}");

    let pickle = tmp.path().join("v1-5-pruned-emaonly.ckpt");
    std::fs::write(&pickle, b"PK").unwrap();
    let err = load(&pickle).expect_err("pickle").to_string();
    assert!(err.contains("only .safetensors"), "{err}");

    let nowhere = tmp.path().join("sd-v1-5.safetensors");
    let err = load(&nowhere).expect_err("nothing there").to_string();
    let path = nowhere.display().to_string();
    for part in [
        path.as_str(),
        "v1-5-pruned-emaonly.safetensors",
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
    ] {
        assert!(err.contains(part), "{part} not in {err}");
    }
}

/// A folder holding a single file instead of a diffusers layout (a `--local-dir` download of
/// `v1-5-pruned-emaonly.safetensors`) fails on the missing `model_index.json`, naming the file
/// to pass instead.
#[test]
fn a_folder_holding_a_single_file_points_to_it() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("v1-5-pruned-emaonly.safetensors");
    std::fs::copy(fixture(SINGLE), &file).unwrap();
    let err = SdComponents::<B>::load(tmp.path(), &Default::default())
        .expect_err("not a diffusers folder")
        .to_string();
    let index = tmp.path().join("model_index.json").display().to_string();
    let file = format!("`{}`", file.display());
    assert!(err.contains(&index) && err.contains(&file), "{err}");
}
