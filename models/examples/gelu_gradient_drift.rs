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

fn image_reward_grad<B: AutodiffBackend>() -> Vec<f32> {
    use bench_models::image_reward::ImageRewardModel;
    use burn::tensor::{Bool, Int};
    let d = Default::default();
    let (model, config) = ImageRewardModel::<B>::load(
        &fx("image_reward/image_reward_tiny.pt"),
        Some(&fx("image_reward/med_config.json")),
        Some(4),
        &d,
    )
    .unwrap();
    let (n, len, side) = (2, 12, config.vision.image_size);
    let x = Tensor::<B, 4>::from_data(
        TensorData::new(lcg(n * 3 * side * side, 1), [n, 3, side, side]),
        &d,
    )
    .require_grad();
    let vocab = config.text.vocab_size;
    let ids: Vec<i64> = (0..n * len).map(|i| (i * 7 % vocab) as i64).collect();
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [n, len]), &d);
    let padding =
        Tensor::<B, 2, Bool>::from_data(TensorData::new(vec![false; n * len], [n, len]), &d);
    let w = Tensor::<B, 1>::from_data(TensorData::new(lcg(n, 2), [n]), &d);
    let g = (model.forward(x.clone(), ids, padding) * w)
        .sum()
        .backward();
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
        image_reward_grad::<Autodiff<NdArray>>(),
        image_reward_grad::<Autodiff<Flex>>(),
    );
    report(
        "UNet eps (GEGLU)",
        unet_grad::<Autodiff<NdArray>>(),
        unet_grad::<Autodiff<Flex>>(),
    );
}
