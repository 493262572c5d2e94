//! Times the Fréchet distance on two feature sets, for `tools/bench/frechet_timing.py`, which
//! runs pytorch-fid's route (`np.mean`, `np.cov`, `calculate_frechet_distance`) on the same
//! features. Prints the distance. By default the route `bench fid` takes from two folders'
//! features (`frechet_distance_of_features`: from the rows when N·N < d², else the fits);
//! `--statistics` fits both Gaussians and takes the symmetric route, as from `.npz` statistics.
//!
//! `cargo build --release -p bench --example frechet_timing`, then
//! `target/release/examples/frechet_timing FEATURES.safetensors [--statistics]` (tensors `a`
//! and `b`, f64 `[N, d]`, as the Python script writes them).

use bench_metrics::frechet::{frechet_distance, frechet_distance_of_features, Gaussian};

fn main() -> Result<(), String> {
    bench::allocator::tune_allocator();
    // On a pool's worker, as `bench` computes its commands.
    bench::compute_pool::ComputePool::whole_machine().run(timings)
}

fn timings() -> Result<(), String> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: frechet_timing FEATURES.safetensors")?;
    let bytes = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| e.to_string())?;
    let rows = |name: &str| -> Result<(Vec<f64>, usize, usize), String> {
        let view = st.tensor(name).map_err(|e| e.to_string())?;
        let values: Vec<f64> = view
            .data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        Ok((values, view.shape()[0], view.shape()[1]))
    };
    let ((a, na, d), (b, nb, _)) = (rows("a")?, rows("b")?);
    let distance = if std::env::args().any(|a| a == "--statistics") {
        frechet_distance(&Gaussian::fit(&a, na, d)?, &Gaussian::fit(&b, nb, d)?)?
    } else {
        frechet_distance_of_features(&a, na, &b, nb, d)?
    };
    println!("FID: {distance}");
    Ok(())
}
