//! The `imagereward` reward on a tiny random ImageReward checkpoint scored by the ImageReward
//! package's own code (fixtures/image_reward/, tools/fixtures/make_image_reward.py): the
//! package's `score` on PIL images (torchvision's rounded crop offsets, 35 tokens), and
//! ∇-GFlowNet's differentiable path (tensor resize, 512 tokens) with its autograd gradient.

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Tensor, TensorData};

use bench_core::{BuildContext, NetworkCache};
use bench_rewards::image::imagereward::{self, ImageReward, ImageRewardParams, Preprocess};
use bench_rewards::{image_gradient, Reward};

use crate::aesthetic::{assert_gradient, fixture, read};

type B = Autodiff<Flex>;
const IO: &str = "../image_reward/io.safetensors";

fn prompts() -> Vec<String> {
    let tokens: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("../image_reward/tokens.json")).unwrap(),
    )
    .unwrap();
    serde_json::from_value(tokens["prompts"].clone()).unwrap()
}

fn params(max_length: usize, preprocess: Preprocess) -> ImageRewardParams {
    ImageRewardParams {
        checkpoint: fixture("../image_reward/image_reward_tiny.pt"),
        med_config: Some(fixture("../image_reward/med_config.json")),
        vision_heads: Some(4),
        max_length,
        preprocess,
        ..ImageRewardParams::default()
    }
}

fn tensor(name: &str) -> Tensor<Flex, 4> {
    let (v, shape) = read(IO, name);
    Tensor::from_data(TensorData::new(v, shape), &Default::default())
}

#[test]
fn scores_and_gradient_equal_the_packages_code() {
    let cache = NetworkCache::default();
    let cx = BuildContext::<B>::new(Default::default(), &cache);
    let prompts = prompts();

    let reward = ImageReward::build(&params(35, Preprocess::Processor), &cx).unwrap();
    let (want, _) = read(IO, "processor.scores");
    for (i, want) in want.iter().enumerate() {
        let image = tensor(&format!("processor.image.{i}"));
        let got = reward.score(image, &prompts[i..=i]).into_scalar();
        assert!((got - want).abs() < 1e-4, "image {i}: {got} vs {want}");
    }

    let reward = ImageReward::build(&params(512, Preprocess::Differentiable), &cx).unwrap();
    let images = tensor("differentiable.images");
    let pair = [prompts[0].clone(), prompts[3].clone()];
    let got = reward
        .score(images.clone(), &pair)
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let (want, _) = read(IO, "differentiable.scores");
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-4, "differentiable: {g} vs {w}");
    }
    let grad = image_gradient(&reward as &dyn Reward<B>, Tensor::from_inner(images), &pair);
    let (want, _) = read(IO, "differentiable.grad");
    assert_gradient(grad.unwrap(), &want);
    assert_eq!(cache.len(), 1, "one checkpoint, loaded once");
}

#[test]
fn sizes_are_read_off_the_checkpoint_without_med_config() {
    // The same checkpoint without med_config: 2 text heads cannot be guessed (16 / 64), so the
    // text side must say so; with med_config, doctor describes what it found.
    let cache = NetworkCache::default();
    let cx = BuildContext::<B>::new(Default::default(), &cache);
    let no_config = ImageRewardParams {
        med_config: None,
        ..params(35, Preprocess::Processor)
    };
    let err = ImageReward::build(&no_config, &cx).err().unwrap();
    assert!(err.contains("not a multiple of 64"), "{err}");
    let checks = imagereward::check_files(&params(35, Preprocess::Processor));
    let found = checks[0].outcome.as_ref().unwrap();
    assert!(
        found.contains("2 layers of width 32, 32 px in patches of 8")
            && found.contains("30524 ids"),
        "{found}"
    );
}

#[test]
fn bad_files_and_lengths_are_named() {
    let cache = NetworkCache::default();
    let cx = BuildContext::<B>::new(Default::default(), &cache);
    let missing = ImageRewardParams {
        checkpoint: fixture("../image_reward/nothing.pt"),
        ..params(35, Preprocess::Processor)
    };
    let err = ImageReward::build(&missing, &cx).err().unwrap();
    assert!(
        err.contains("huggingface.co/THUDM/ImageReward") && !err.contains("SD v1.5"),
        "{err}"
    );
    let err = ImageReward::build(&params(513, Preprocess::Processor), &cx)
        .err()
        .unwrap();
    assert!(
        err.contains("max_length = 513") && err.contains("512 positions"),
        "{err}"
    );
    let err = ImageReward::build(&params(1, Preprocess::Processor), &cx)
        .err()
        .unwrap();
    assert!(err.contains("max_length"), "{err}");
    // A tokenizer with more ids than the text encoder embeds would index past its table.
    let dir = tempfile::tempdir().unwrap();
    let vocab = dir.path().join("vocab.txt");
    let mut tokens: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .map(String::from)
        .to_vec();
    tokens.extend((0..30600).map(|i| format!("w{i}")));
    std::fs::write(&vocab, tokens.join("\n")).unwrap();
    let wide = ImageRewardParams {
        tokenizer: Some(vocab),
        ..params(35, Preprocess::Processor)
    };
    let err = ImageReward::build(&wide, &cx).err().unwrap();
    assert!(
        err.contains("30607 ids") && err.contains("embeds 30524"),
        "{err}"
    );
}
