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
