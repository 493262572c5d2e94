//! DreamSim (tools/fixtures/make_dreamsim.py, dreamsim 0.2.1 + peft 0.13.2): tiny random ViTs of
//! the real architecture in the package's cache layout, read by the real loader with the LoRA
//! merged, give the package's features, embeddings and distance (the package runs the LoRA
//! unmerged through peft); the real full-size files' key lists fit the loaders.

use std::collections::BTreeMap;
use std::path::Path;

use burn::backend::Flex;
use burn::tensor::Tensor;

use bench_models::dreamsim::{
    branch_config, dino_layout_key, parse_lora_key, BranchKind, DreamSim, DreamSimVariant,
    IMAGE_SIZE,
};
use bench_models::resize::pil_resize;
use bench_models::weights::{check_mapped, expected_tensors, Header};

use crate::common::{compare, fixture, header_of, input};

const IO: &str = "dreamsim/io.safetensors";

fn images(name: &str) -> Tensor<Flex, 4> {
    input::<Flex, 4>(IO, name) / 255.0
}

#[test]
fn ensemble_features_embedding_and_distance_equal_the_dreamsim_package() {
    let device = Default::default();
    let model = DreamSim::<Flex>::load(
        &fixture("dreamsim/models"),
        DreamSimVariant::Ensemble,
        &device,
    )
    .unwrap();
    let x = images("images");
    for (branch, name) in
        model
            .branches
            .iter()
            .zip(["dino_vitb16", "clip_vitb16", "open_clip_vitb16"])
    {
        let (err, scale) = compare(branch.features(x.clone()), IO, &format!("features.{name}"));
        assert!(
            err <= 1e-4 * scale.max(1.0),
            "{name}: {err} (scale {scale})"
        );
    }
    let embed = model.embed(x);
    let (err, _) = compare(embed.clone(), IO, "embed");
    assert!(err <= 1e-5, "embedding: {err}");
    let distance = 1.0 - (embed.clone().narrow(0, 0, 1) * embed.narrow(0, 1, 1)).sum();
    let (err, _) = compare(distance, IO, "distance");
    assert!(err <= 1e-5, "distance: {err}");

    // The package's preprocess of 8-bit images: Pillow's bicubic to 224², then ToTensor.
    let levels = input::<Flex, 4>(IO, "small_images");
    let resized = pil_resize(levels, [IMAGE_SIZE, IMAGE_SIZE]);
    let (err, _) = compare(resized.clone(), IO, "small_resized");
    assert_eq!(err, 0.0, "Pillow's levels");
    let (err, _) = compare(model.embed(resized / 255.0), IO, "small_embed");
    assert!(err <= 1e-5, "embedding of resized images: {err}");
}

#[test]
fn single_dino_model_with_a_safetensors_adapter_equals_the_package() {
    let device = Default::default();
    let model = DreamSim::<Flex>::load(
        &fixture("dreamsim/models"),
        DreamSimVariant::DinoVitb16,
        &device,
    )
    .unwrap();
    let (err, _) = compare(model.embed(images("images")), IO, "single_embed");
    assert!(err <= 1e-5, "{err}");
}

#[test]
fn missing_files_are_named_with_where_to_get_them() {
    let dir = tempfile::tempdir().unwrap();
    let err = DreamSim::<Flex>::load(dir.path(), DreamSimVariant::Ensemble, &Default::default())
        .err()
        .unwrap();
    for file in [
        "dino_vitbase16_pretrain.pth",
        "clip_vitb16_pretrain.pth.tar",
        "open_clip_vitb16_pretrain.pth.tar",
        "ensemble_lora/adapter_config.json",
        "pip install dreamsim",
    ] {
        assert!(err.contains(file), "{file}: {err}");
    }
}

/// The real files' key lists (keys.json, from the package's code at full size).
fn real(name: &str) -> Header {
    let all: BTreeMap<String, Vec<(String, Vec<usize>)>> =
        serde_json::from_str(&std::fs::read_to_string(fixture("dreamsim/keys.json")).unwrap())
            .unwrap();
    header_of(all[name].iter().map(|(k, s)| (k, s)))
}

#[test]
fn the_real_files_fit_the_loaders_key_for_key() {
    let device = Default::default();
    for (kind, name) in [
        (BranchKind::Dino, "dino"),
        (BranchKind::Clip, "clip"),
        (BranchKind::OpenClip, "clip"),
    ] {
        let header = real(name);
        let config = branch_config(kind, &header, Path::new(name)).unwrap();
        assert_eq!(
            (
                config.hidden_size,
                config.num_hidden_layers,
                config.num_attention_heads
            ),
            (768, 12, 12)
        );
        assert_eq!(
            config.projection_dim,
            if name == "dino" { 768 } else { 512 }
        );
        let module = config.init::<Flex>(&device);
        let report = check_mapped(&module, Path::new(name), &header, "", &dino_layout_key);
        assert!(report.problems.is_empty(), "{name}: {:?}", report.problems);
        let read: Vec<String> = expected_tensors(&module)
            .iter()
            .map(|(k, _)| dino_layout_key(k).key)
            .collect();
        let unread: Vec<&String> = header.keys().filter(|k| !read.contains(k)).collect();
        assert!(unread.is_empty(), "{name}: {unread:?}");
    }
    // Every LoRA tensor of the ensemble is a qkv pair of one of the 3 × 12 blocks.
    let lora = real("ensemble_lora");
    assert_eq!(lora.len(), 2 * 3 * 12);
    for (key, info) in &lora {
        let (branch, module, side) = parse_lora_key(key).unwrap_or_else(|| panic!("{key}"));
        assert!(branch < 3 && module.ends_with(".attn.qkv"), "{key}");
        let want = if side == 'A' { [16, 768] } else { [2304, 16] };
        assert_eq!(info.shape, want, "{key}");
    }
}

#[test]
fn misshapen_or_truncated_files_are_errors_not_panics() {
    let device = Default::default();
    let copy = |dir: &Path| {
        let single = dir.join("dino_vitb16_single_lora");
        std::fs::create_dir_all(dir.join("checkpoints")).unwrap();
        std::fs::create_dir_all(&single).unwrap();
        let src = fixture("dreamsim/models");
        for f in [
            "checkpoints/dino_vitbase16_pretrain.pth",
            "dino_vitb16_single_lora/adapter_config.json",
        ] {
            std::fs::copy(src.join(f), dir.join(f)).unwrap();
        }
        single
    };
    // A LoRA factor that is not a matrix.
    let dir = tempfile::tempdir().unwrap();
    let single = copy(dir.path());
    let bytes = [0u8; 16];
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![4], &bytes).unwrap();
    let key = "base_model.model.extractor_list.0.model.blocks.0.attn.qkv.lora_A.weight";
    safetensors::serialize_to_file(
        vec![(key, view)],
        None,
        &single.join("adapter_model.safetensors"),
    )
    .unwrap();
    let err = DreamSim::<Flex>::load(dir.path(), DreamSimVariant::DinoVitb16, &device)
        .err()
        .unwrap();
    assert!(err.contains("a LoRA factor is a matrix"), "{err}");
    // A truncated backbone.
    let full = std::fs::read(dir.path().join("checkpoints/dino_vitbase16_pretrain.pth")).unwrap();
    std::fs::write(
        dir.path().join("checkpoints/dino_vitbase16_pretrain.pth"),
        &full[..full.len() / 2],
    )
    .unwrap();
    let err = DreamSim::<Flex>::load(dir.path(), DreamSimVariant::DinoVitb16, &device)
        .err()
        .unwrap();
    assert!(err.contains("dino_vitbase16_pretrain.pth"), "{err}");
}
