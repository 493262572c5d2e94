//! How far the input gradients of bench's GELU networks move on a backend that keeps burn's
//! default `gelu_backward` (the tanh approximation's derivative, as burn's CUDA backend does):
//! each network's gradient on autodiff-over-ndarray against autodiff-over-flex (whose GELU
//! backward is exact), on the tiny fixtures, as relative L2 distance and 1 − cosine.
//!
//! `cargo run --release -p bench-models --example gelu_gradient_drift`. With `models/src`
//! of a commit before `bench_models::gelu` (e76b881) it shows what the composed form fixed.

use bench_models::clip::{clip_normalise, ClipVisionModel};
use bench_models::sd::UNet2DConditionModel;
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};
use burn_ndarray::NdArray;
use std::path::PathBuf;

fn fx(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(rel)
}

fn lcg(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f64 / (1u64 << 31) as f64 * 2.0 - 1.0) as f32
        })
        .collect()
}

fn clip_grad<B: AutodiffBackend>() -> Vec<f32> {
    let d = Default::default();
    let clip = ClipVisionModel::<B>::from_folder(&fx("reward_nets/clip_tiny"), &d).unwrap();
    let x = Tensor::<B, 4>::from_data(
        TensorData::new(
            lcg(2 * 3 * 30 * 30, 1)
                .iter()
                .map(|v| v * 0.5 + 0.5)
                .collect::<Vec<_>>(),
            [2, 3, 30, 30],
        ),
        &d,
    )
    .require_grad();
    let out = clip.forward(clip_normalise(x.clone()));
    let [b, e] = out.dims();
    let w = Tensor::<B, 2>::from_data(TensorData::new(lcg(b * e, 2), [b, e]), &d);
    let g = (out * w).sum().backward();
    x.grad(&g).unwrap().into_data().to_vec().unwrap()
}

fn unet_grad<B: AutodiffBackend>() -> Vec<f32> {
    let d = Default::default();
    let unet = UNet2DConditionModel::<B>::from_folder(&fx("sd_tiny/unet"), &d).unwrap();
    let x = Tensor::<B, 4>::from_data(TensorData::new(lcg(2 * 4 * 8 * 8, 3), [2, 4, 8, 8]), &d)
        .require_grad();
    let t = Tensor::<B, 1>::from_floats([500.0, 20.0], &d);
    let ctx = Tensor::<B, 3>::from_data(TensorData::new(lcg(2 * 77 * 32, 4), [2, 77, 32]), &d);
    let w = Tensor::<B, 4>::from_data(TensorData::new(lcg(2 * 4 * 8 * 8, 5), [2, 4, 8, 8]), &d);
    let g = (unet.forward(x.clone(), t, ctx) * w).sum().backward();
    x.grad(&g).unwrap().into_data().to_vec().unwrap()
}

fn hps_grad<B: AutodiffBackend>() -> Vec<f32> {
    use bench_models::clip::{load_open_clip, OpenClipConfig};
    let d = Default::default();
    let config = OpenClipConfig::from_file(&fx("openclip/hps_tiny_config.json")).unwrap();
    let (vision, _) = load_open_clip::<B>(&config, &fx("openclip/hps_tiny.pt"), &d).unwrap();
    let x = Tensor::<B, 4>::from_data(TensorData::new(lcg(2 * 3 * 30 * 30, 1), [2, 3, 30, 30]), &d)
        .require_grad();
    let out = vision.forward(x.clone());
    let [b, e] = out.dims();
    let w = Tensor::<B, 2>::from_data(TensorData::new(lcg(b * e, 2), [b, e]), &d);
    let g = (out * w).sum().backward();
    x.grad(&g).unwrap().into_data().to_vec().unwrap()
}

fn blip_grad<B: AutodiffBackend>() -> Vec<f32> {
    use bench_models::bert::{BertConfig, BertModel};
    use bench_models::blip::{load_vision, BlipVisionConfig};
    use burn::tensor::{Bool, Int};
    let d = Default::default();
    let file = fx("blip/image_reward_tiny.pt");
    let vit = BlipVisionConfig {
        image_size: 30,
        patch_size: 6,
        width: 32,
        layers: 2,
        heads: 4,
        mlp_width: 128,
    };
    let tower = load_vision::<B>(&vit, &file, "blip.visual_encoder.", &d).unwrap();
    let config = BertConfig {
        vocab_size: 50,
        hidden_size: 24,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 37,
        max_position_embeddings: 40,
        add_cross_attention: true,
        encoder_width: Some(32),
        ..BertConfig::default()
    };
    let (bert, _) = BertModel::<B>::load(config, &file, Some("blip.text_encoder."), &d).unwrap();
    let x = Tensor::<B, 4>::from_data(TensorData::new(lcg(2 * 3 * 30 * 30, 1), [2, 3, 30, 30]), &d)
        .require_grad();
    let ids = Tensor::<B, 2, Int>::from_data(
        TensorData::new(
            (0..2 * 12).map(|i| (i * 7 % 50) as i64).collect::<Vec<_>>(),
            [2, 12],
        ),
        &d,
    );
    let pad = Tensor::<B, 2, Bool>::from_data(TensorData::new(vec![false; 24], [2, 12]), &d);
    let out = bert.forward_with_context(ids, pad, Some(tower.tokens(x.clone())));
    let w = Tensor::<B, 3>::from_data(TensorData::new(lcg(2 * 12 * 24, 2), [2, 12, 24]), &d);
    let g = (out * w).sum().backward();
    x.grad(&g).unwrap().into_data().to_vec().unwrap()
}

fn cmp(what: &str, a: &[f32], b: &[f32]) {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let diff: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum::<f64>()
        .sqrt();
    println!(
        "{what}: relative L2 {:.2e}, 1 - cosine {:.2e}",
        diff / nb,
        1.0 - dot / (na * nb)
    );
}

fn main() {
    let report =
        |what: &str, approximate: Vec<f32>, exact: Vec<f32>| cmp(what, &approximate, &exact);
    report(
        "CLIP vision (QuickGELU, unaffected)",
        clip_grad::<Autodiff<NdArray>>(),
        clip_grad::<Autodiff<Flex>>(),
    );
    report(
        "HPS (OpenCLIP) vision",
        hps_grad::<Autodiff<NdArray>>(),
        hps_grad::<Autodiff<Flex>>(),
    );
    report(
        "ImageReward BLIP ViT + BERT",
        blip_grad::<Autodiff<NdArray>>(),
        blip_grad::<Autodiff<Flex>>(),
    );
    report(
        "UNet eps (GEGLU)",
        unet_grad::<Autodiff<NdArray>>(),
        unet_grad::<Autodiff<Flex>>(),
    );
}
