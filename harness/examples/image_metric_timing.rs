//! Images per second through the image metrics' networks on the inference backend, for
//! `tools/bench/image_metric_timing.py`, which times the same work in PyTorch: pytorch-fid's
//! Inception (resize to 299 included) or DreamSim's ensemble embedding (on 224² inputs), on
//! random images of the same kind (uniform noise in [0, 1], seeded: each side's checksum
//! repeats from run to run and build to build, up to rounding; the two sides' generators
//! differ), the same batch, after one batch of warm-up; loading is not timed.
//!
//! `cargo build --release -p bench --example image_metric_timing`, then
//! `target/release/examples/image_metric_timing inception WEIGHTS N BATCH SIDE` or
//! `target/release/examples/image_metric_timing dreamsim FOLDER N BATCH`.

use std::path::Path;
use std::time::Instant;

use burn::tensor::{backend::Backend, Distribution, Tensor};

use bench::backend::Inner;
use bench_models::dreamsim::{DreamSim, DreamSimVariant, IMAGE_SIZE};
use bench_models::inception::FidInception;

fn arg(i: usize) -> Result<String, String> {
    std::env::args().nth(i).ok_or_else(|| {
        "usage: image_metric_timing inception WEIGHTS N BATCH SIDE | dreamsim FOLDER N BATCH"
            .to_string()
    })
}

fn number(i: usize) -> Result<usize, String> {
    arg(i)?.parse().map_err(|e| format!("argument {i}: {e}"))
}

/// Runs `forward` over `n` images in batches after one warm-up batch; prints images/s and a
/// checksum of the outputs.
fn time(
    n: usize,
    batch: usize,
    side: usize,
    forward: impl Fn(Tensor<Inner, 4>) -> Tensor<Inner, 2>,
) {
    let device = Default::default();
    // The same images in every run, so that two builds' checksums compare their outputs.
    <Inner as Backend>::seed(&device, 0);
    let images = |k: usize| {
        Tensor::<Inner, 4>::random([k, 3, side, side], Distribution::Uniform(0.0, 1.0), &device)
    };
    let _ = forward(images(batch)).into_data();
    let t0 = Instant::now();
    let mut sum = 0.0f64;
    let mut done = 0;
    while done < n {
        let k = batch.min(n - done);
        let out = forward(images(k))
            .into_data()
            .to_vec::<f32>()
            .expect("f32 output");
        sum += out.iter().map(|v| f64::from(*v)).sum::<f64>();
        done += k;
    }
    let seconds = t0.elapsed().as_secs_f64();
    println!(
        "{n} images in {seconds:.2} s: {:.2} images/s (checksum {sum:.3})",
        n as f64 / seconds
    );
}

fn main() -> Result<(), String> {
    bench::allocator::tune_allocator();
    // On a pool's worker, as `bench` computes its commands.
    bench::compute_pool::ComputePool::whole_machine().run(timings)
}

fn timings() -> Result<(), String> {
    let device = Default::default();
    let (what, path) = (arg(1)?, arg(2)?);
    let (n, batch) = (number(3)?, number(4)?);
    match what.as_str() {
        "inception" => {
            let side = number(5)?;
            let model = FidInception::<Inner>::load(Path::new(&path), &device)
                .map_err(|e| e.to_string())?;
            time(n, batch, side, |x| model.features(x));
        }
        "dreamsim" => {
            let model =
                DreamSim::<Inner>::load(Path::new(&path), DreamSimVariant::Ensemble, &device)?;
            time(n, batch, IMAGE_SIZE, |x| model.embed(x));
        }
        other => return Err(format!("unknown network `{other}`")),
    }
    Ok(())
}
