//! Times the Fréchet distance on two feature sets, for `tools/bench/frechet_timing.py`, which
//! runs pytorch-fid's route (`np.mean`, `np.cov`, `calculate_frechet_distance`) on the same
//! features: fitting both Gaussians and the distance. Prints the distance.
//!
//! `cargo build --release -p bench --example frechet_timing`, then
//! `target/release/examples/frechet_timing FEATURES.safetensors` (tensors `a` and `b`, f64
//! `[N, d]`, as the Python script writes them).

use bench_metrics::frechet::{frechet_distance, Gaussian};

fn main() -> Result<(), String> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: frechet_timing FEATURES.safetensors")?;
    let bytes = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| e.to_string())?;
    let fit = |name: &str| -> Result<Gaussian, String> {
        let view = st.tensor(name).map_err(|e| e.to_string())?;
        let values: Vec<f64> = view
            .data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        Gaussian::fit(&values, view.shape()[0], view.shape()[1])
    };
    let distance = frechet_distance(&fit("a")?, &fit("b")?)?;
    println!("FID: {distance}");
    Ok(())
}
