//! Times a CFG rollout and one LoRA training step on an SD folder (the tiny fixture by default),
//! for `tools/bench/tiny_sd_timing.py`, which runs diffusers/PyTorch on the same work and
//! prints both side by side. Prints one JSON object: per-repetition milliseconds.
//!
//! `cargo run --release -p bench --example sd_timing -- fixtures/sd_tiny 4 50 7`
//! (model folder, batch, steps, repetitions).

use std::time::Instant;

use bench::backend::Backend;
use bench_algorithms::optim::{OptimConfig, Trained};
use bench_envs::sd::{SdConfig, SdEnv};
use bench_envs::{
    normal_tensor, rollout, Denoiser, DiffusionEnv, DiffusionModel, Environment, LogProbReduction,
    SamplerConfig,
};
use rand::{rngs::StdRng, SeedableRng};

fn main() {
    bench::allocator::tune_allocator();
    // On a pool's worker, as `bench run` computes each run.
    bench::compute_pool::ComputePool::whole_machine().run(timings);
}

fn timings() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or(default.into());
    let model = arg(1, "fixtures/sd_tiny");
    let batch: usize = arg(2, "4").parse().expect("batch");
    let steps: usize = arg(3, "50").parse().expect("steps");
    let reps: usize = arg(4, "7").parse().expect("repetitions");
    let resolution: usize = arg(5, "16").parse().expect("resolution");

    let prompts = ["a photo of a cat", "an astronaut riding a horse"];
    let config = SdConfig {
        model: model.into(),
        prompts: prompts.iter().map(|p| p.to_string()).collect(),
        resolution,
        ..SdConfig::default()
    };
    let sampler = SamplerConfig::with_steps(steps);
    let env = SdEnv::<Backend>::load(config, sampler, Default::default()).expect("model");
    let rows: Vec<usize> = (0..batch).map(|i| i % prompts.len()).collect();
    let mut rng = StdRng::seed_from_u64(0);

    // Rollout: `steps` DDIM (η = 1) transitions with CFG 5 and their log-probs, base model, on
    // the inference backend as training and evaluation sample.
    let mut rollout_ms = vec![];
    for _ in 0..reps {
        let t0 = Instant::now();
        let traj = rollout(env.infer(), Denoiser::Base, rows.clone(), &mut rng);
        let _ = traj.final_states().into_data();
        rollout_ms.push(t0.elapsed().as_secs_f64() * 1e3);
    }

    // One training step: the LoRA policy's guided log-prob of fixed transitions at one step,
    // backward, AdamW with global clipping.
    let mut lora = Trained::new(env.init_policy(&mut rng), OptimConfig::default());
    let x = normal_tensor::<Backend>(batch, env.dims(), &mut rng, env.device());
    let k = vec![steps / 2; batch];
    let next = env
        .train()
        .transition(Denoiser::Base, x.clone(), &k, &rows)
        .sample(normal_tensor(batch, env.dims(), &mut rng, env.device()))
        .detach();
    let mut step_ms = vec![];
    for _ in 0..reps {
        let t0 = Instant::now();
        let lp = env
            .train()
            .transition(Denoiser::Policy(&lora.module), x.clone(), &k, &rows)
            .log_prob(next.clone(), LogProbReduction::Mean);
        let mut grads = lp.mean().neg().backward();
        lora.step(&mut grads);
        step_ms.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    // Peak resident memory of this process (Linux), read here rather than by the parent:
    // a forked child's counter starts at the parent's size.
    let peak_kib: u64 = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    println!(
        "{{\"rollout_ms\": {rollout_ms:?}, \"step_ms\": {step_ms:?}, \"threads\": {}, \
         \"peak_rss_kib\": {peak_kib}}}",
        rayon::current_num_threads()
    );
}
