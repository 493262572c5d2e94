//! How far the input gradients of bench's GELU networks move on a backend that keeps burn's
//! default `gelu_backward` (the tanh approximation's derivative, as burn's CUDA backend does):
//! each network's gradient on autodiff-over-ndarray against autodiff-over-flex (whose GELU
//! backward is exact), on the tiny fixtures, as relative L2 distance and 1 − cosine.
//!
//! `cargo run --release -p bench-models --example gelu_gradient_drift`. With `models/src`
//! of a commit before `bench_models::gelu` (e76b881) it shows what the composed form fixed.

use bench_models::clip::{clip_normalise, load_open_clip, ClipVisionModel, OpenClipConfig};
use bench_models::image_reward::ImageRewardModel;
use bench_models::sd::UNet2DConditionModel;
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use burn_ndarray::NdArray;
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::path::PathBuf;

fn fx(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(rel)
}

/// Values uniform in [−1, 1) drawn on the host from `seed`: the same on every backend.
fn uniform<B: AutodiffBackend, const D: usize>(shape: [usize; D], seed: u64) -> Tensor<B, D> {
    let mut rng = StdRng::seed_from_u64(seed);
    let values: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    Tensor::from_data(TensorData::new(values, shape), &Default::default())
}

/// The gradient with respect to `x` of `Σ w·out` for fixed random weights `w`.
fn gradient<B: AutodiffBackend, const D: usize, const E: usize>(
    x: &Tensor<B, D>,
    out: Tensor<B, E>,
) -> Vec<f32> {
    let weights = uniform::<B, E>(out.dims(), 2);
    let grads = (out * weights).sum().backward();
    x.grad(&grads).unwrap().into_data().to_vec().unwrap()
}

fn clip_grad<B: AutodiffBackend>() -> Vec<f32> {
    let clip = ClipVisionModel::<B>::from_folder(&fx("reward_nets/clip_tiny"), &Default::default())
        .unwrap();
    let x = (uniform::<B, 4>([2, 3, 30, 30], 1) * 0.5 + 0.5).require_grad();
    gradient(&x, clip.forward(clip_normalise(x.clone())))
}

fn unet_grad<B: AutodiffBackend>() -> Vec<f32> {
    let d = Default::default();
    let unet = UNet2DConditionModel::<B>::from_folder(&fx("sd_tiny/unet"), &d).unwrap();
    let x = uniform::<B, 4>([2, 4, 8, 8], 3).require_grad();
    let t = Tensor::<B, 1>::from_floats([500.0, 20.0], &d);
    let context = uniform::<B, 3>([2, 77, 32], 4);
    gradient(&x, unet.forward(x.clone(), t, context))
}

fn hps_grad<B: AutodiffBackend>() -> Vec<f32> {
    let config = OpenClipConfig::from_file(&fx("openclip/hps_tiny_config.json")).unwrap();
    let (vision, _) =
        load_open_clip::<B>(&config, &fx("openclip/hps_tiny.pt"), &Default::default()).unwrap();
    let x = uniform::<B, 4>([2, 3, 30, 30], 1).require_grad();
    gradient(&x, vision.forward(x.clone()))
}

/// ImageReward's score through its own loader: BLIP's ViT, the cross-attending BERT, the head.
fn image_reward_grad<B: AutodiffBackend>() -> Vec<f32> {
    let d = Default::default();
    let (model, config) = ImageRewardModel::<B>::load(
        &fx("image_reward/image_reward_tiny.pt"),
        Some(&fx("image_reward/med_config.json")),
        Some(4),
        &d,
    )
    .unwrap();
    let (n, len, side) = (2, 12, config.vision.image_size);
    let x = uniform::<B, 4>([n, 3, side, side], 1).require_grad();
    let ids: Vec<i64> = (0..n * len)
        .map(|i| (i * 7 % config.text.vocab_size) as i64)
        .collect();
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [n, len]), &d);
    let padding =
        Tensor::<B, 2, Bool>::from_data(TensorData::new(vec![false; n * len], [n, len]), &d);
    gradient(&x, model.forward(x.clone(), ids, padding))
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

/// One network's input gradient on autodiff over ndarray (burn's default GELU backward) and
/// over flex (exact).
type Pair = (&'static str, fn() -> Vec<f32>, fn() -> Vec<f32>);

fn main() {
    let networks: [Pair; 4] = [
        (
            "CLIP vision (QuickGELU, unaffected)",
            clip_grad::<Autodiff<NdArray>>,
            clip_grad::<Autodiff<Flex>>,
        ),
        (
            "HPS (OpenCLIP) vision",
            hps_grad::<Autodiff<NdArray>>,
            hps_grad::<Autodiff<Flex>>,
        ),
        (
            "ImageReward BLIP ViT + BERT",
            image_reward_grad::<Autodiff<NdArray>>,
            image_reward_grad::<Autodiff<Flex>>,
        ),
        (
            "UNet eps (GEGLU)",
            unet_grad::<Autodiff<NdArray>>,
            unet_grad::<Autodiff<Flex>>,
        ),
    ];
    for (what, approximate, exact) in networks {
        cmp(what, &approximate(), &exact());
    }
}
