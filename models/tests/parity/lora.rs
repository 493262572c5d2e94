//! LoRA on the UNet against diffusers + peft: a rank-4 LoRA made by peft on the tiny UNet and
//! saved by diffusers (`fixtures/sd_tiny/lora/`) loads into ours and gives diffusers' ε; ours
//! saves with the same key set; peft's and the attention-processor key names load too.
//!
//! Measured max abs error of ε with the LoRA (Flex, f32): 8.2e-6 (max |ε| 1.93).

use std::collections::BTreeMap;

use crate::common::{compare, fixture, input};
use bench_models::sd::{LoraConfig, UNet2DConditionModel, UNetLora};
use bench_models::LoadError;
use burn::backend::Flex;
use burn::tensor::Tensor;
use rand::{rngs::StdRng, SeedableRng};
use safetensors::SafeTensors;

type B = Flex;
const IO: &str = "sd_tiny/unet_lora.safetensors";

fn unet() -> UNet2DConditionModel<B> {
    UNet2DConditionModel::from_folder(&fixture("sd_tiny/unet"), &Default::default()).unwrap()
}

fn lora_file() -> std::path::PathBuf {
    fixture("sd_tiny/lora/pytorch_lora_weights.safetensors")
}

fn eps(unet: &UNet2DConditionModel<B>, lora: Option<&UNetLora<B>>) -> Tensor<B, 4> {
    unet.forward_with_lora(
        input(IO, "sample"),
        input(IO, "timesteps"),
        input(IO, "encoder_hidden_states"),
        lora,
    )
}

/// (key, shape, f32 values) of every tensor of a safetensors file.
fn read_all(path: &std::path::Path) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(k, v)| {
            let values = v
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (k, (v.shape().to_vec(), values))
        })
        .collect()
}

fn write_all(path: &std::path::Path, tensors: &BTreeMap<String, (Vec<usize>, Vec<f32>)>) {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(k, (s, v))| {
            (
                k.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                s.clone(),
            )
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = bytes
        .iter()
        .map(|(k, b, s)| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

fn max_diff(a: Tensor<B, 4>, b: Tensor<B, 4>) -> f64 {
    f64::from((a - b).abs().max().into_scalar())
}

#[test]
fn peft_lora_gives_diffusers_eps() {
    let unet = unet();
    let lora =
        UNetLora::<B>::load(&unet.lora_layout(), &lora_file(), None, &Default::default()).unwrap();
    assert_eq!(lora.config.rank, 4);
    let (err, scale) = compare(eps(&unet, Some(&lora)), IO, "eps");
    assert!(scale > 1.0);
    eprintln!("LoRA ε: max abs error {err:.2e}, max |ε| {scale:.2}");
    assert!(err <= 1e-4, "max abs error {err:.2e}");
    // The LoRA really changes the output (so the comparison above tests it).
    let change = max_diff(eps(&unet, Some(&lora)), eps(&unet, None));
    assert!(change > 0.05, "the LoRA changes ε by only {change:.2e}");
}

#[test]
fn fresh_lora_is_the_base_model() {
    let unet = unet();
    let mut rng = StdRng::seed_from_u64(0);
    let lora = UNetLora::new(
        &unet.lora_layout(),
        LoraConfig::default(),
        &mut rng,
        &Default::default(),
    );
    assert_eq!(max_diff(eps(&unet, Some(&lora)), eps(&unet, None)), 0.0);
}

#[test]
fn saved_lora_has_diffusers_keys_and_reloads() {
    let unet = unet();
    let dir = tempfile::tempdir().unwrap();
    let lora =
        UNetLora::<B>::load(&unet.lora_layout(), &lora_file(), None, &Default::default()).unwrap();
    let out = dir.path().join("saved.safetensors");
    lora.save(&out).unwrap();
    let ours = read_all(&out);
    let theirs = read_all(&lora_file());
    let shapes = |m: &BTreeMap<String, (Vec<usize>, Vec<f32>)>| {
        m.iter()
            .map(|(k, (s, _))| (k.clone(), s.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(shapes(&ours), shapes(&theirs));
    for (k, (_, v)) in &ours {
        assert_eq!(v, &theirs[k].1, "{k} changed in the round trip");
    }

    // A LoRA at scale 2 saves with the scale folded into `up`: the file alone (read at
    // scale 1, as diffusers reads it) gives the same ε.
    let config = LoraConfig {
        rank: 4,
        alpha: 8.0,
    };
    let scaled = UNetLora {
        config,
        ..UNetLora::<B>::load(&unet.lora_layout(), &lora_file(), None, &Default::default()).unwrap()
    };
    scaled.save(&out).unwrap();
    let reread = UNetLora::<B>::load(&unet.lora_layout(), &out, None, &Default::default()).unwrap();
    let before = eps(&unet, Some(&scaled));
    let after = eps(&unet, Some(&reread));
    assert!(max_diff(before.clone(), after) < 1e-5);
    // and differs from the same weights at scale 1.
    let unscaled =
        UNetLora::<B>::load(&unet.lora_layout(), &lora_file(), None, &Default::default()).unwrap();
    assert!(max_diff(before, eps(&unet, Some(&unscaled))) > 0.05);
}

#[test]
fn peft_and_attention_processor_names_load() {
    let unet = unet();
    let dir = tempfile::tempdir().unwrap();
    let reference = eps(
        &unet,
        Some(
            &UNetLora::<B>::load(&unet.lora_layout(), &lora_file(), None, &Default::default())
                .unwrap(),
        ),
    );
    let original = read_all(&lora_file());
    type Rename = fn(&str) -> String;
    let renamings: [(&str, Rename); 2] = [
        ("peft", |k| {
            format!(
                "base_model.model.{}",
                k.trim_start_matches("unet.")
                    .replace(".lora.down.weight", ".lora_A.weight")
                    .replace(".lora.up.weight", ".lora_B.weight")
            )
        }),
        ("attention processor", |k| {
            let k = k.trim_start_matches("unet.");
            let (module, rest) = k.split_once(".to_").unwrap();
            let (proj, rest) = rest.split_once(".lora.").unwrap();
            let proj = proj.trim_end_matches(".0");
            format!("{module}.processor.to_{proj}_lora.{rest}")
        }),
    ];
    for (name, rename) in renamings {
        let renamed = original
            .iter()
            .map(|(k, v)| (rename(k), v.clone()))
            .collect();
        let path = dir.path().join(format!("{name}.safetensors"));
        write_all(&path, &renamed);
        let lora =
            UNetLora::<B>::load(&unet.lora_layout(), &path, None, &Default::default()).unwrap();
        let d = max_diff(eps(&unet, Some(&lora)), reference.clone());
        assert!(d < 1e-6, "{name} names: ε differs by {d:.2e}");
    }
}

#[test]
fn missing_lora_tensor_is_named() {
    let unet = unet();
    let dir = tempfile::tempdir().unwrap();
    let mut tensors = read_all(&lora_file());
    let gone = "unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_v.lora.up.weight";
    assert!(tensors.remove(gone).is_some());
    let path = dir.path().join("partial.safetensors");
    write_all(&path, &tensors);
    let err =
        UNetLora::<B>::load(&unet.lora_layout(), &path, None, &Default::default()).unwrap_err();
    assert!(matches!(err, LoadError::Tensors { .. }));
    let message = err.to_string();
    assert!(
        message.contains("mid_block.attentions.0.transformer_blocks.0.attn2.to_v")
            && message.contains("missing"),
        "{message}"
    );
}
