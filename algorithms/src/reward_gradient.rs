//! Rewards with their gradients, through burn's autodiff: r(decode(x)) keeps its graph to x
//! and to whatever x was computed from (the policy), and ∇_x r comes back as a tensor.

use burn::tensor::{backend::AutodiffBackend, backend::Backend, Tensor, TensorData};
use rand::rngs::StdRng;

use bench_envs::{normal_data, Denoiser, DiffusionEnv, DiffusionModel};
use bench_rewards::DifferentiableReward;

/// r(decode(x)) per row, differentiable in `x`; `reward` lives on `env`'s device.
pub fn differentiable_reward<B: AutodiffBackend, E: DiffusionEnv<B>>(
    env: &E,
    reward: &dyn DifferentiableReward<B>,
    x0: Tensor<B, 2>,
    prompts: &[usize],
) -> Tensor<B, 1> {
    reward.score_with_graph(env.train().decode(x0), &env.prompt_texts(prompts))
}

/// ∇_x of Σ_rows f(x), as a constant: `f` builds the graph from a fresh leaf.
pub fn gradient_wrt_input<B: AutodiffBackend>(
    x: Tensor<B, 2>,
    f: impl FnOnce(Tensor<B, 2>) -> Tensor<B, 1>,
) -> Tensor<B, 2> {
    bench_rewards::input_gradient(x, f).expect("the function depends on its input")
}

/// The Gaussian perturbations of x̂₀ that smooth a reward's gradient (the paper's remedy for
/// non-smooth rewards), drawn on the host for a whole batch of rows so that any split of the
/// rows over devices sees the draws one device would.
#[derive(Clone, Debug, Default)]
pub struct SmoothingNoise {
    /// Each draw, row-major `[rows, dims]`, already scaled by the smoothing std.
    draws: Vec<Vec<f32>>,
    dims: usize,
}

impl SmoothingNoise {
    /// `samples` draws of std `smoothing` for the rows where `drawn` is true, in the order
    /// [`bench_envs::normal_tensor`] would draw a `[drawn rows, dims]` tensor per sample; the
    /// other rows get zeros and consume nothing. `smoothing` 0 draws nothing at all.
    pub fn draw(
        drawn: &[bool],
        dims: usize,
        smoothing: f64,
        samples: usize,
        rng: &mut StdRng,
    ) -> Self {
        if smoothing <= 0.0 {
            return Self {
                draws: Vec::new(),
                dims,
            };
        }
        let count = drawn.iter().filter(|&&d| d).count();
        let draws = (0..samples.max(1))
            .map(|_| {
                let mut fresh = normal_data(count * dims, rng).into_iter();
                let mut draw = Vec::with_capacity(drawn.len() * dims);
                for &d in drawn {
                    if d {
                        draw.extend(fresh.by_ref().take(dims).map(|z| z * smoothing as f32));
                    } else {
                        draw.resize(draw.len() + dims, 0.0);
                    }
                }
                draw
            })
            .collect();
        Self { draws, dims }
    }

    /// The draws of `rows` (indices into the rows drawn for), each a `[rows, dims]` tensor on
    /// `device`; none without smoothing.
    pub fn rows<B: Backend>(&self, rows: &[usize], device: &B::Device) -> Vec<Tensor<B, 2>> {
        let d = self.dims;
        self.draws
            .iter()
            .map(|draw| {
                let data: Vec<f32> = rows
                    .iter()
                    .flat_map(|&r| draw[r * d..(r + 1) * d].iter().copied())
                    .collect();
                Tensor::from_data(TensorData::new(data, [rows.len(), d]), device)
            })
            .collect()
    }
}

/// ∇_x r(x̂₀(x)) for states `x` at inference steps `steps`, through `frozen`'s guided ε (as
/// ∇-GFlowNet's forward-looking term does), averaged over the perturbations `noise` of x̂₀
/// (one per draw, `[rows, dims]`, from [`SmoothingNoise`]); with none, r at x̂₀ itself.
pub fn predicted_reward_gradient<B: AutodiffBackend, E: DiffusionEnv<B>>(
    env: &E,
    reward: &dyn DifferentiableReward<B>,
    frozen: &E::Policy,
    x: Tensor<B, 2>,
    steps: &[usize],
    prompts: &[usize],
    noise: Vec<Tensor<B, 2>>,
) -> Tensor<B, 2> {
    let train = env.train();
    let noise: Vec<Option<Tensor<B, 2>>> = if noise.is_empty() {
        vec![None]
    } else {
        noise.into_iter().map(Some).collect()
    };
    let draws = noise.len();
    gradient_wrt_input(x, |x| {
        let eps = train.eps(Denoiser::Policy(frozen), x.clone(), steps, prompts);
        let x0 = train.scheduler().predict_x0(x, eps, steps);
        let total = noise
            .into_iter()
            .map(|z| {
                let x0 = z.map_or(x0.clone(), |z| x0.clone() + z);
                differentiable_reward(env, reward, x0, prompts)
            })
            .reduce(|a, b| a + b)
            .expect("at least one draw");
        total.div_scalar(draws as f64)
    })
}

/// ∇_x r(x) at final states.
pub fn reward_gradient<B: AutodiffBackend, E: DiffusionEnv<B>>(
    env: &E,
    reward: &dyn DifferentiableReward<B>,
    x0: Tensor<B, 2>,
    prompts: &[usize],
) -> Tensor<B, 2> {
    gradient_wrt_input(x0, |x| differentiable_reward(env, reward, x, prompts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use rand::SeedableRng;

    type AB = Autodiff<Flex>;

    #[test]
    fn smoothing_noise_replays_one_devices_draws_and_splits_by_rows() {
        let (dims, smoothing) = (3, 0.5);
        let drawn = [true, false, true, true, false];
        let noise = SmoothingNoise::draw(&drawn, dims, smoothing, 2, &mut StdRng::seed_from_u64(7));
        // One device drew a [3, dims] tensor per sample for the drawn rows.
        let mut rng = StdRng::seed_from_u64(7);
        let device = Default::default();
        for (s, draw) in noise
            .rows::<AB>(&[0, 2, 3], &device)
            .into_iter()
            .enumerate()
        {
            let expected: Vec<f32> = normal_data(3 * dims, &mut rng)
                .into_iter()
                .map(|z| z * smoothing as f32)
                .collect();
            assert_eq!(
                draw.into_data().to_vec::<f32>().unwrap(),
                expected,
                "sample {s}"
            );
        }
        let undrawn = noise.rows::<AB>(&[4, 1], &device);
        assert!(undrawn
            .into_iter()
            .all(|t| t.into_data().to_vec::<f32>().unwrap() == vec![0.0; 2 * dims]));
        let none = SmoothingNoise::draw(&drawn, dims, 0.0, 2, &mut StdRng::seed_from_u64(7));
        assert!(none.rows::<AB>(&[0], &device).is_empty());
    }
}
