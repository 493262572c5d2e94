//! The `clip_score` reward on the tiny random CLIP of fixtures/reward_nets/: both preprocessing
//! paths give transformers' cosines for three images and prompts (one repeated, one past 77
//! tokens), and the gradient path gives torch's gradient.

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Tensor, TensorData};

use bench_core::{BuildContext, NetworkCache};
use bench_rewards::image::clip_score::{ClipScore, ClipScoreParams};
use bench_rewards::image::Preprocess;
use bench_rewards::{image_gradient, Reward};

use crate::aesthetic::{assert_gradient, fixture, read};

type B = Autodiff<Flex>;
const IO: &str = "clip_score.safetensors";

fn reward(preprocess: Preprocess, cache: &NetworkCache) -> Result<ClipScore<B>, String> {
    let cx = BuildContext::new(Default::default(), cache);
    ClipScore::build(
        &ClipScoreParams {
            clip: fixture("clip_tiny"),
            preprocess,
            ..Default::default()
        },
        &cx,
    )
}

#[test]
fn both_paths_score_as_transformers_and_the_gradient_is_torchs() {
    let cache = NetworkCache::default();
    let prompts: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(fixture("clip_score_prompts.json")).unwrap())
            .unwrap();
    let (v, shape) = read(IO, "images");
    let images: Tensor<Flex, 4> = Tensor::from_data(TensorData::new(v, shape), &Default::default());
    for (preprocess, expected) in [
        (Preprocess::Processor, "processor.scores"),
        (Preprocess::Differentiable, "differentiable.scores"),
    ] {
        let got = reward(preprocess, &cache)
            .unwrap()
            .score(images.clone(), &prompts)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        let (want, _) = read(IO, expected);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-4, "{preprocess:?}: {g} vs {w}");
        }
    }
    let r = reward(Preprocess::Processor, &cache).unwrap();
    let grad = image_gradient(&r as &dyn Reward<B>, Tensor::from_inner(images), &prompts).unwrap();
    let (want, _) = read(IO, "differentiable.grad");
    assert_gradient(grad, &want);
}

#[test]
fn a_missing_folder_says_where_to_get_clip() {
    let cache = NetworkCache::default();
    let cx = BuildContext::<B>::new(Default::default(), &cache);
    let err = ClipScore::build(&ClipScoreParams::default(), &cx)
        .err()
        .unwrap();
    assert!(err.contains("openai/clip-vit-large-patch14"), "{err}");
    assert!(err.contains("clip-vit-large-patch14/config.json"), "{err}");
    assert!(!err.contains("SD v1.5"), "{err}");
}
