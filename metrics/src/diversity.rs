//! Sample diversity on the toy: the mean pairwise Euclidean distance (meaningful in 2-D, unlike
//! in SD's latent space, where FID between two batches replaces it).

use bench_models::Point;

/// Mean distance over all pairs of the first `max_points` samples.
pub fn mean_pairwise_distance(samples: &[Point], max_points: usize) -> f64 {
    let x = &samples[..samples.len().min(max_points)];
    if x.len() < 2 {
        return 0.0;
    }
    let mut s = 0.0;
    for i in 0..x.len() {
        for j in i + 1..x.len() {
            s += ((x[i][0] - x[j][0]).powi(2) + (x[i][1] - x[j][1]).powi(2)).sqrt();
        }
    }
    2.0 * s / (x.len() * (x.len() - 1)) as f64
}
