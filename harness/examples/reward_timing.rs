//! Times the network rewards on their tiny fixtures, for `tools/bench/reward_timing.py`, which
//! runs transformers/open_clip/torch on the same work and prints both side by side: scoring a
//! batch without a graph, and the reward's gradient with respect to the images (forward with
//! the graph and backward). Prints one JSON object: per-repetition milliseconds by reward.
//!
//! `cargo run --release -p bench --example reward_timing -- 8 64 20` (batch, image side,
//! repetitions); run from the repository root (it reads fixtures/).

use std::collections::BTreeMap;

use bench::backend::{Backend, Inner};
use bench_core::{BuildContext, NetworkCache};
use bench_rewards::image::{
    Aesthetic, AestheticParams, ClipScore, ClipScoreParams, Hps, HpsParams, ImageReward,
    ImageRewardParams, Preprocess,
};
use bench_rewards::{image_gradient, Reward};
use burn::tensor::{Distribution, Tensor};

#[path = "support/timing.rs"]
mod timing;
use timing::repeat_ms;

fn main() {
    bench::allocator::tune_allocator();
    // On a pool's worker, as `bench` computes its commands.
    bench::compute_pool::ComputePool::whole_machine().run(timings)
}

fn timings() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or(default.into());
    let batch: usize = arg(1, "8").parse().expect("batch");
    let side: usize = arg(2, "64").parse().expect("image side");
    let reps: usize = arg(3, "20").parse().expect("repetitions");

    let cache = NetworkCache::default();
    let cx = BuildContext::<Backend>::new(Default::default(), &cache);
    let nets = "fixtures/reward_nets";
    let rewards: Vec<(&str, Box<dyn Reward<Backend>>)> = vec![
        (
            "aesthetic",
            Box::new(
                Aesthetic::build(
                    &AestheticParams {
                        clip: format!("{nets}/clip_tiny").into(),
                        head: format!("{nets}/aesthetic_head_tiny.pth").into(),
                        preprocess: Preprocess::Differentiable,
                        ..Default::default()
                    },
                    &cx,
                )
                .expect("aesthetic"),
            ),
        ),
        (
            "clip_score",
            Box::new(
                ClipScore::build(
                    &ClipScoreParams {
                        clip: format!("{nets}/clip_tiny").into(),
                        preprocess: Preprocess::Differentiable,
                        ..Default::default()
                    },
                    &cx,
                )
                .expect("clip_score"),
            ),
        ),
        (
            "hpsv2",
            Box::new(
                Hps::build(
                    &HpsParams {
                        checkpoint: "fixtures/openclip/hps_tiny.pt".into(),
                        config: Some("fixtures/openclip/hps_tiny_config.json".into()),
                        ..Default::default()
                    },
                    &cx,
                )
                .expect("hpsv2"),
            ),
        ),
        (
            "imagereward",
            Box::new(
                ImageReward::build(
                    &ImageRewardParams {
                        checkpoint: "fixtures/image_reward/image_reward_tiny.pt".into(),
                        med_config: Some("fixtures/image_reward/med_config.json".into()),
                        vision_heads: Some(4),
                        // ∇-GFlowNet's path, as the PyTorch side runs it.
                        max_length: 512,
                        preprocess: Preprocess::Differentiable,
                        ..ImageRewardParams::default()
                    },
                    &cx,
                )
                .expect("imagereward"),
            ),
        ),
    ];
    let prompts: Vec<String> = (0..batch)
        .map(|i| ["a photo of a cat", "an oil painting of a dog"][i % 2].to_string())
        .collect();
    let images = Tensor::<Inner, 4>::random(
        [batch, 3, side, side],
        Distribution::Uniform(0.0, 1.0),
        &Default::default(),
    );
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (name, reward) in &rewards {
        let time = |f: &dyn Fn()| repeat_ms(reps, f);
        let score = time(&|| {
            let _ = reward.score(images.clone(), &prompts).into_data();
        });
        let gradient = time(&|| {
            let grad = image_gradient(
                reward.as_ref(),
                Tensor::from_inner(images.clone()),
                &prompts,
            )
            .expect("differentiable");
            let _ = grad.into_data();
        });
        out.insert(format!("{name}.score"), score);
        out.insert(format!("{name}.gradient"), gradient);
    }
    println!("{}", serde_json::to_string(&out).expect("JSON"));
}
