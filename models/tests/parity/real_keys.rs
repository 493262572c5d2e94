//! The reward loaders held against every tensor of the real checkpoints' architectures
//! (fixtures/reward_real_keys.json, from tools/fixtures/real_reward_keys.py): CLIP ViT-L/14,
//! HPSv2's OpenCLIP ViT-H/14 and ImageReward's BLIP + BERT at full size. Each module tensor
//! must find its key with the right stored shape, and the keys no loader reads must be exactly
//! the known extras, so a tensor the file has but a loader skips cannot pass unnoticed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use burn::backend::Flex;
use burn::module::Module;

use bench_models::aesthetic_head::head_layout;
use bench_models::bert::{self, BertConfig};
use bench_models::blip::{self, BlipVisionConfig};
use bench_models::clip::open_clip::{text_keys, vision_keys};
use bench_models::clip::{ClipTextConfig, ClipVisionConfig, OpenClipConfig};
use bench_models::image_reward::ImageRewardConfig;
use bench_models::weights::{check_mapped, expected_tensors, FileKey, Header};

use crate::common::{fixture, header_of};

fn header(checkpoint: &str) -> Header {
    let all: BTreeMap<String, BTreeMap<String, Vec<usize>>> =
        serde_json::from_str(&std::fs::read_to_string(fixture("reward_real_keys.json")).unwrap())
            .unwrap();
    header_of(&all[checkpoint])
}

/// The file keys `module` reads through `map`, after checking each against `header`.
fn read<M: Module<Flex>>(
    module: &M,
    header: &Header,
    map: &dyn Fn(&str) -> FileKey,
) -> BTreeSet<String> {
    let report = check_mapped(module, Path::new("real"), header, "", map);
    assert!(
        report.problems.is_empty(),
        "{:?}",
        &report.problems[..report.problems.len().min(5)]
    );
    expected_tensors(module)
        .iter()
        .map(|(k, _)| map(k).key)
        .collect()
}

fn unread(header: &Header, read: &BTreeSet<String>) -> Vec<String> {
    header
        .keys()
        .filter(|k| !read.contains(*k))
        .cloned()
        .collect()
}

#[test]
fn clip_vit_l14_loaders_read_every_tensor() {
    let file = header("clip_vit_l14");
    let device = Default::default();
    let vision = ClipVisionConfig::vit_l14().init::<Flex>(&device);
    let text = ClipTextConfig::sd15().init_with_projection::<Flex>(768, &device);
    let plain = |k: &str| FileKey::plain(k);
    let mut keys = read(&vision, &file, &plain);
    keys.extend(read(&text, &file, &plain));
    assert_eq!(unread(&file, &keys), ["logit_scale"]);
}

#[test]
fn hps_vit_h14_loader_reads_every_tensor() {
    let file = header("hps_vit_h14");
    let device = Default::default();
    let config = OpenClipConfig::vit_h14();
    let mut keys = read(&config.vision().init::<Flex>(&device), &file, &vision_keys);
    let text = config
        .text()
        .init_with_projection::<Flex>(config.embed_dim, &device);
    keys.extend(read(&text, &file, &text_keys));
    assert_eq!(unread(&file, &keys), ["logit_scale"]);
}

#[test]
fn image_reward_networks_and_head_read_every_tensor() {
    let file = header("image_reward");
    let device = Default::default();
    let vision = BlipVisionConfig::vit_l16().tower().init::<Flex>(&device);
    let mut keys = read(&vision, &file, &blip::vision_keys("blip.visual_encoder."));
    let text = BertConfig {
        vocab_size: 30524,
        type_vocab_size: 0,
        add_cross_attention: true,
        encoder_width: Some(1024),
        ..BertConfig::default()
    }
    .init::<Flex>(&device);
    keys.extend(read(&text, &file, &bert::keys("blip.text_encoder.")));
    // The MLP head: the aesthetic head's layout under `mlp.`, on the text's CLS state.
    let shapes = file
        .iter()
        .map(|(k, i)| (k.clone(), i.shape.clone()))
        .collect();
    let (indices, widths) = head_layout(&shapes, "mlp.").unwrap();
    assert_eq!(widths, [768, 1024, 128, 64, 16, 1]);
    for k in indices {
        keys.extend(["weight", "bias"].map(|p| format!("mlp.layers.{k}.{p}")));
    }
    assert_eq!(
        unread(&file, &keys),
        ["blip.text_encoder.embeddings.position_ids"]
    );
    // The sizes the reward reads off the file are ImageReward-v1.0's, with or without its
    // med_config.json.
    let v1 = ImageRewardConfig::v1();
    assert_eq!(ImageRewardConfig::infer(&file, None, None).unwrap(), v1);
    let med_config = BertConfig {
        vocab_size: 30524,
        add_cross_attention: true,
        encoder_width: Some(768),
        ..BertConfig::default()
    };
    let from_file = ImageRewardConfig::infer(&file, Some(med_config), None).unwrap();
    assert_eq!(from_file.vision, v1.vision);
    assert_eq!(from_file.text.encoder_width, Some(1024));
}
