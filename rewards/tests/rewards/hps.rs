//! The `hpsv2` reward on a tiny random OpenCLIP checkpoint saved as HPSv2 saves its own
//! (fixtures/openclip/): HPSv2's preprocessing, the scores and their gradient equal open_clip's.

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Tensor, TensorData};

use bench_core::{BuildContext, NetworkCache};
use bench_rewards::image::hpsv2::hps_pixels;
use bench_rewards::image::{Hps, HpsParams};
use bench_rewards::{image_gradient, Reward};

use crate::aesthetic::{assert_gradient, fixture, read};

type B = Autodiff<Flex>;
const IO: &str = "../openclip/io.safetensors";

#[test]
fn preprocessing_scores_and_gradient_equal_open_clip() {
    let (v, shape) = read(IO, "images");
    let images: Tensor<Flex, 4> = Tensor::from_data(TensorData::new(v, shape), &Default::default());
    // ResizeMaxSize: 40×34 → 30×26 (25.5 rounds to even), padded by 2 on each side.
    let pixels = hps_pixels(images.clone(), 30)
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let (want, _) = read(IO, "pixels");
    let err = pixels
        .iter()
        .zip(&want)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(err <= 1e-5, "pixels: {err}");

    let cache = NetworkCache::default();
    let cx = BuildContext::<B>::new(Default::default(), &cache);
    let params = HpsParams {
        checkpoint: fixture("../openclip/hps_tiny.pt"),
        config: Some(fixture("../openclip/hps_tiny_config.json")),
        ..Default::default()
    };
    let reward = Hps::build(&params, &cx).unwrap();
    let prompts: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(fixture("../openclip/prompts.json")).unwrap(),
    )
    .unwrap();
    let got = reward
        .score(images.clone(), &prompts)
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let (want, _) = read(IO, "scores");
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-4, "score {g} vs {w}");
    }
    let grad = image_gradient(
        &reward as &dyn Reward<B>,
        Tensor::from_inner(images),
        &prompts,
    )
    .unwrap();
    let (want, _) = read(IO, "grad");
    assert_gradient(grad, &want);
}

#[test]
fn a_missing_checkpoint_says_where_to_get_it() {
    let cache = NetworkCache::default();
    let cx = BuildContext::<B>::new(Default::default(), &cache);
    let err = Hps::build(&HpsParams::default(), &cx).err().unwrap();
    assert!(err.contains("xswu/HPSv2"), "{err}");
    assert!(err.contains("HPS_v2.1_compressed.pt"), "{err}");
}
