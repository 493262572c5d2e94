//! The toy's samples as host points.

use burn::tensor::{backend::Backend, Tensor};

use bench_models::Point;

/// Toy samples `[N, 2, 1, 1]` (or any `[N, 2, …]` of two values per row) as host points.
pub fn to_points<B: Backend>(samples: &Tensor<B, 4>) -> Vec<Point> {
    let flat = samples
        .clone()
        .into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .expect("float samples");
    flat.chunks(2).map(|c| [c[0], c[1]]).collect()
}

/// Appends the points of `samples` to `kept` until it holds `max` (a metric's first `max`
/// samples of a prompt); once full, nothing more is read back from the device.
pub fn keep_points<B: Backend>(kept: &mut Vec<Point>, samples: &Tensor<B, 4>, max: usize) {
    let room = max.saturating_sub(kept.len());
    if room > 0 {
        kept.extend(to_points(samples).into_iter().take(room));
    }
}
