//! Rewards with their gradients, through burn's autodiff: r(decode(x)) keeps its graph to x
//! and to whatever x was computed from (the policy), and ∇_x r comes back as a tensor.

use burn::tensor::{backend::AutodiffBackend, Tensor};
use rand::rngs::StdRng;

use bench_envs::{normal_tensor, Denoiser, DiffusionEnv, DiffusionModel};
use bench_rewards::DifferentiableReward;

use crate::algorithm::Context;

/// r(decode(x)) per row, differentiable in `x`.
pub fn differentiable_reward<B: AutodiffBackend, E: DiffusionEnv<B>>(
    ctx: &Context<'_, B, E>,
    reward: &dyn DifferentiableReward<B>,
    x0: Tensor<B, 2>,
    prompts: &[usize],
) -> Tensor<B, 1> {
    reward.score_with_graph(ctx.env.train().decode(x0), &ctx.env.prompt_texts(prompts))
}

/// ∇_x of Σ_rows f(x), as a constant: `f` builds the graph from a fresh leaf.
pub fn gradient_wrt_input<B: AutodiffBackend>(
    x: Tensor<B, 2>,
    f: impl FnOnce(Tensor<B, 2>) -> Tensor<B, 1>,
) -> Tensor<B, 2> {
    bench_rewards::input_gradient(x, f).expect("the function depends on its input")
}

/// ∇_x r(x̂₀(x)) for states `x` at inference steps `steps`, through `frozen`'s guided ε (as
/// ∇-GFlowNet's forward-looking term does), averaged over `samples` Gaussian perturbations of
/// x̂₀ with std `smoothing` (the paper's remedy for non-smooth rewards; 0 disables it).
#[allow(clippy::too_many_arguments)]
pub fn predicted_reward_gradient<B: AutodiffBackend, E: DiffusionEnv<B>>(
    ctx: &Context<'_, B, E>,
    reward: &dyn DifferentiableReward<B>,
    frozen: &E::Policy,
    x: Tensor<B, 2>,
    steps: &[usize],
    prompts: &[usize],
    smoothing: f64,
    samples: usize,
    rng: &mut StdRng,
) -> Tensor<B, 2> {
    let train = ctx.env.train();
    let [n, d] = x.dims();
    // Without smoothing, one draw of x̂₀ itself (no noise drawn).
    let noise: Vec<Option<Tensor<B, 2>>> = if smoothing > 0.0 {
        (0..samples.max(1))
            .map(|_| Some(normal_tensor::<B>(n, d, rng, train.device()).mul_scalar(smoothing)))
            .collect()
    } else {
        vec![None]
    };
    let draws = noise.len();
    gradient_wrt_input(x, |x| {
        let eps = train.eps(Denoiser::Policy(frozen), x.clone(), steps, prompts);
        let x0 = train.scheduler().predict_x0(x, eps, steps);
        let total = noise
            .into_iter()
            .map(|z| {
                let x0 = z.map_or(x0.clone(), |z| x0.clone() + z);
                differentiable_reward(ctx, reward, x0, prompts)
            })
            .reduce(|a, b| a + b)
            .expect("at least one draw");
        total.div_scalar(draws as f64)
    })
}

/// ∇_x r(x) at final states.
pub fn reward_gradient<B: AutodiffBackend, E: DiffusionEnv<B>>(
    ctx: &Context<'_, B, E>,
    reward: &dyn DifferentiableReward<B>,
    x0: Tensor<B, 2>,
    prompts: &[usize],
) -> Tensor<B, 2> {
    gradient_wrt_input(x0, |x| differentiable_reward(ctx, reward, x, prompts))
}
