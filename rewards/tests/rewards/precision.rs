//! The CLIP-family rewards with their towers in bf16 and f16 (`dtype`), on the tiny random
//! fixtures: the weights are really cast (the scores move), scores and image gradients stay
//! within half precision's rounding of f32's, and everything returned is f32.

use burn::backend::{Autodiff, Flex};
use burn::tensor::{DType, Tensor, TensorData};

use bench_core::{BuildContext, NetworkCache};
use bench_models::Precision;
use bench_rewards::image::aesthetic::{Aesthetic, AestheticParams};
use bench_rewards::image::clip_score::{ClipScore, ClipScoreParams};
use bench_rewards::image::imagereward::{ImageReward, ImageRewardParams};
use bench_rewards::image::{Hps, HpsParams, PagParams, PagReward};
use bench_rewards::{image_gradient, Reward};

use crate::aesthetic::{fixture, read};

type B = Autodiff<Flex>;

/// A reward built in a precision.
type Build = dyn Fn(Precision, &BuildContext<'_, B>) -> Box<dyn Reward<B>>;

/// Scores and image gradient of `build(dtype)` on the fixture images.
fn measure(
    build: &Build,
    dtype: Precision,
    images: &Tensor<Flex, 4>,
    prompts: &[String],
    cache: &NetworkCache,
) -> (Vec<f32>, Vec<f32>) {
    let cx = BuildContext::new(Default::default(), cache);
    let reward = build(dtype, &cx);
    let scores = reward.score(images.clone(), prompts);
    assert_eq!(scores.dtype(), DType::F32, "{dtype:?} scores");
    let grad =
        image_gradient(reward.as_ref(), Tensor::from_inner(images.clone()), prompts).unwrap();
    assert_eq!(grad.dtype(), DType::F32, "{dtype:?} gradient");
    (
        scores.into_data().to_vec().unwrap(),
        grad.into_data().to_vec().unwrap(),
    )
}

/// max |a − b| over paired values.
fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

#[test]
fn half_precision_towers_score_and_differentiate_near_f32() {
    let (v, shape) = read("io.safetensors", "images");
    let images: Tensor<Flex, 4> =
        Tensor::from_data(TensorData::new(v, shape.clone()), &Default::default());
    let prompts: Vec<String> = ["a cat", "a photo of a dog on the beach", "abstract art"]
        .iter()
        .cycle()
        .take(shape[0])
        .map(|p| p.to_string())
        .collect();
    let rewards: Vec<(&str, Box<Build>)> = vec![
        (
            "aesthetic",
            Box::new(|dtype, cx| {
                let params = AestheticParams {
                    clip: fixture("clip_tiny"),
                    head: fixture("aesthetic_head_tiny.pth"),
                    dtype,
                    ..Default::default()
                };
                Box::new(Aesthetic::build(&params, cx).unwrap())
            }),
        ),
        (
            "clip_score",
            Box::new(|dtype, cx| {
                let params = ClipScoreParams {
                    clip: fixture("clip_tiny"),
                    dtype,
                    ..Default::default()
                };
                Box::new(ClipScore::build(&params, cx).unwrap())
            }),
        ),
        (
            "hpsv2",
            Box::new(|dtype, cx| {
                let params = HpsParams {
                    checkpoint: fixture("../openclip/hps_tiny.pt"),
                    config: Some(fixture("../openclip/hps_tiny_config.json")),
                    dtype,
                };
                Box::new(Hps::build(&params, cx).unwrap())
            }),
        ),
        (
            "imagereward",
            Box::new(|dtype, cx| {
                let params = ImageRewardParams {
                    checkpoint: fixture("../image_reward/image_reward_tiny.pt"),
                    med_config: Some(fixture("../image_reward/med_config.json")),
                    vision_heads: Some(4),
                    dtype,
                    ..Default::default()
                };
                Box::new(ImageReward::build(&params, cx).unwrap())
            }),
        ),
    ];
    // One cache for every precision, as in a sweep: each precision must get its own towers.
    let cache = NetworkCache::default();
    for (name, build) in &rewards {
        let (scores, grad) = measure(build.as_ref(), Precision::F32, &images, &prompts, &cache);
        let scale = scores.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        // Largest score drift relative to the largest score, and the gradient's cosine.
        for (dtype, max_drift, min_cosine) in [
            (Precision::Bf16, 0.05, 0.999),
            (Precision::F16, 0.01, 0.9999),
        ] {
            let (half, half_grad) = measure(build.as_ref(), dtype, &images, &prompts, &cache);
            let drift = largest_difference(&scores, &half) / scale;
            let cos = cosine(&grad, &half_grad);
            println!("{name} {dtype:?}: score drift {drift:.2e} of the largest score, gradient cosine {cos:.6}");
            assert!(
                drift > 0.0,
                "{name} {dtype:?}: the scores did not move: weights not cast"
            );
            assert!(
                drift <= max_drift,
                "{name} {dtype:?}: score drift {drift:.2e}"
            );
            assert!(cos >= min_cosine, "{name} {dtype:?}: gradient cosine {cos}");
        }
    }
}

/// PAG's reward per prompt (its towers are the `aesthetic` and `clip_score` rewards', whose
/// gradients are tested above) moves in half precision, within its rounding of f32's. On the
/// fixture's prompts, one of the two relevance terms follows its cosines (the other's sit at
/// the floor, as PAG's own fixture values show).
#[test]
fn pags_reward_in_half_precision_stays_near_f32() {
    let tensor = |name| {
        let (v, shape) = read("pag.safetensors", name);
        Tensor::<Flex, 4>::from_data(TensorData::new(v, shape), &Default::default())
    };
    let prompts = vec![
        "a photo of a cat".to_string(),
        "a painting of a dog".to_string(),
    ];
    let cache = NetworkCache::default();
    let cx = BuildContext::<B>::new(Default::default(), &cache);
    let score = |dtype| {
        let params = PagParams {
            clip: fixture("clip_tiny"),
            head: fixture("aesthetic_head_tiny.pth"),
            dtype,
            ..PagParams::default()
        };
        let reward = PagReward::<Flex>::build(&params, &cx).unwrap();
        reward
            .score(tensor("adapted"), tensor("plain"), &prompts)
            .unwrap()
    };
    let full = score(Precision::F32);
    let scale = full.reward.iter().fold(0.0f32, |m, r| m.max(r.abs()));
    for (dtype, max_drift) in [(Precision::Bf16, 0.05), (Precision::F16, 0.01)] {
        let half = score(dtype);
        for (name, a, b) in [
            ("aesthetic gain", &full.aesthetic_gain, &half.aesthetic_gain),
            ("relevance", &full.relevance, &half.relevance),
            ("reward", &full.reward, &half.reward),
        ] {
            let drift = largest_difference(a, b) / scale;
            println!(
                "pag {dtype:?} {name}: {a:?} vs {b:?}, drift {drift:.2e} of the largest reward"
            );
            assert!(
                drift > 0.0,
                "{dtype:?} {name}: did not move: towers not cast"
            );
            assert!(drift <= max_drift, "{dtype:?} {name}: drift {drift:.2e}");
        }
    }
}

/// `P`'s default parameters with `dtype` set by `set`, serialised as in a run's resolved
/// config: in f32 and in bf16.
fn serialised<P: Default + serde::Serialize>(set: fn(&mut P, Precision)) -> (String, String) {
    let text = |dtype| {
        let mut params = P::default();
        set(&mut params, dtype);
        ron::to_string(&params).unwrap()
    };
    (text(Precision::F32), text(Precision::Bf16))
}

#[test]
fn f32_is_left_out_of_the_resolved_parameters_and_half_precision_is_not() {
    // The run id hashes the resolved parameters: results written before `dtype` existed must
    // keep their ids (so they resume), and a bf16 run must get its own.
    let cases = [
        serialised::<AestheticParams>(|p, dtype| p.dtype = dtype),
        serialised::<ClipScoreParams>(|p, dtype| p.dtype = dtype),
        serialised::<HpsParams>(|p, dtype| p.dtype = dtype),
        serialised::<ImageRewardParams>(|p, dtype| p.dtype = dtype),
        serialised::<PagParams>(|p, dtype| p.dtype = dtype),
    ];
    for (f32_text, bf16_text) in cases {
        assert!(!f32_text.contains("dtype"), "{f32_text}");
        assert!(bf16_text.contains("dtype:Bf16"), "{bf16_text}");
    }
}
