//! The `aesthetic` reward on the tiny random CLIP and head of fixtures/reward_nets/: both
//! preprocessing paths give transformers'/torch's scores, and the gradient path differentiates.

use std::path::PathBuf;

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Tensor, TensorData};

use bench_core::{BuildContext, NetworkCache};
use bench_rewards::image::aesthetic::{Aesthetic, AestheticParams, Preprocess};
use bench_rewards::{image_gradient, Reward};

type B = Autodiff<Flex>;

pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/reward_nets")
        .join(rel)
}

/// An f32 tensor of a fixture file in fixtures/reward_nets/: values and shape.
pub fn read(file: &str, name: &str) -> (Vec<f32>, Vec<usize>) {
    let bytes = std::fs::read(fixture(file)).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let view = st.tensor(name).unwrap();
    let values = view
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (values, view.shape().to_vec())
}

fn io(name: &str) -> (Vec<f32>, Vec<usize>) {
    read("io.safetensors", name)
}

fn reward(preprocess: Preprocess, cache: &NetworkCache) -> Aesthetic<B> {
    let params = AestheticParams {
        clip: fixture("clip_tiny"),
        head: fixture("aesthetic_head_tiny.pth"),
        preprocess,
        ..Default::default()
    };
    let cx = BuildContext::new(Default::default(), cache);
    Aesthetic::build(&params, &cx).unwrap()
}

#[test]
fn both_paths_score_as_the_reference_and_the_gradient_flows() {
    let cache = NetworkCache::default();
    let (v, shape) = io("images");
    let images: Tensor<Flex, 4> =
        Tensor::from_data(TensorData::new(v, shape.clone()), &Default::default());
    let prompts = vec![String::new(); shape[0]];
    for (preprocess, expected) in [
        (Preprocess::Processor, "processor.scores"),
        (Preprocess::Differentiable, "differentiable.scores"),
    ] {
        let r = reward(preprocess, &cache);
        let got = r
            .score(images.clone(), &prompts)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        let (want, _) = io(expected);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-4, "{preprocess:?}: {g} vs {w}");
        }
    }
    let r = reward(Preprocess::Processor, &cache);
    let autodiff: Tensor<B, 4> = Tensor::from_inner(images);
    let grad = image_gradient(&r as &dyn Reward<B>, autodiff, &prompts).unwrap();
    let (want, _) = io("differentiable.grad");
    assert_gradient(grad, &want);
}

/// A reward's gradient within 1e-3 of the reference's largest entry, entry by entry.
pub fn assert_gradient(got: Tensor<B, 4>, want: &[f32]) {
    let got = got.into_data().to_vec::<f32>().unwrap();
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= 1e-3 * scale, "gradient {g} vs {w}");
    }
}

#[test]
fn missing_files_say_where_to_get_them() {
    let cache = NetworkCache::default();
    let cx = BuildContext::<B>::new(Default::default(), &cache);
    let err = Aesthetic::build(&AestheticParams::default(), &cx)
        .err()
        .unwrap();
    assert!(err.contains("openai/clip-vit-large-patch14"), "{err}");
    assert!(!err.contains("SD v1.5"), "{err}");
    let err = Aesthetic::build(
        &AestheticParams {
            clip: fixture("clip_tiny"),
            ..AestheticParams::default()
        },
        &cx,
    )
    .err()
    .unwrap();
    assert!(err.contains("improved-aesthetic-predictor"), "{err}");
}
