//! Small helpers shared by the objectives.

use burn::tensor::{backend::Backend, IndexingUpdateOp, Int, Tensor, TensorData};
use rand::{seq::SliceRandom, Rng};

/// A 1-D tensor's values as f64.
pub fn to_f64<B: Backend>(t: Tensor<B, 1>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .expect("float tensor")
}

/// Host values as a `[n]` tensor.
pub fn vector<B: Backend>(values: &[f64], device: &B::Device) -> Tensor<B, 1> {
    let data: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(data, [values.len()]), device)
}

/// `n` prompt indices drawn uniformly from `count` prompts.
pub fn uniform_prompts(count: usize, n: usize, rng: &mut impl Rng) -> Vec<usize> {
    (0..n).map(|_| rng.random_range(0..count)).collect()
}

/// A shuffled partition of `0..n` into minibatches of `size` (the last may be smaller).
pub fn minibatches(n: usize, size: usize, rng: &mut impl Rng) -> Vec<Vec<usize>> {
    let mut rows: Vec<usize> = (0..n).collect();
    rows.shuffle(rng);
    rows.chunks(size.max(1)).map(<[usize]>::to_vec).collect()
}

/// Row indices as an index tensor.
pub fn row_index<B: Backend>(rows: &[usize], device: &B::Device) -> Tensor<B, 1, Int> {
    let data: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
    Tensor::from_data(TensorData::new(data, [rows.len()]), device)
}

/// The rows `rows` of `t`.
pub fn select_rows<B: Backend>(t: &Tensor<B, 2>, rows: &[usize]) -> Tensor<B, 2> {
    t.clone().select(0, row_index::<B>(rows, &t.device()))
}

/// A `[n, d]` tensor whose rows `idx` hold `values`, for each part; rows of no part are 0.
pub fn scatter_rows<B: Backend>(
    [n, d]: [usize; 2],
    parts: Vec<(Vec<usize>, Tensor<B, 2>)>,
) -> Tensor<B, 2> {
    let device = parts[0].1.device();
    parts
        .into_iter()
        .fold(Tensor::zeros([n, d], &device), |acc, (idx, values)| {
            acc.select_assign(
                0,
                row_index::<B>(&idx, &device),
                values,
                IndexingUpdateOp::Add,
            )
        })
}

/// One scalar of a single-element tensor.
pub fn scalar<B: Backend>(t: Tensor<B, 1>) -> f64 {
    to_f64(t)[0]
}

/// Refuses `n` trajectories per epoch whose states alone could not fit in memory (the states,
/// their stacked copy for training, their log-probabilities), before anything is allocated.
///
/// # Errors
/// The estimate against the machine's memory, naming `field`.
pub fn check_trajectories<
    B: burn::tensor::backend::AutodiffBackend,
    E: bench_envs::DiffusionEnv<B>,
>(
    env: &E,
    n: usize,
    field: &str,
) -> Result<(), String> {
    let steps = env.scheduler().num_steps() as f64;
    let bytes = n as f64 * (2.0 * (steps + 1.0) * env.dims() as f64 + steps) * 4.0;
    bench_core::validate::fits_in_memory(&format!("{field} = {n} trajectories"), bytes)
}
