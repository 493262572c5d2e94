//! What a reward is to the rest of `bench`.
//!
//! A reward scores samples without a graph on the inner backend (rollouts, evaluation,
//! `bench score`) and, if it has a gradient, with its graph on the autodiff backend for the
//! objectives that backpropagate through it. Rewards written as plain tensor code implement
//! [`TensorReward`] once, generically over the backend, and get both through [`OnAnyBackend`].

use burn::tensor::{
    backend::{AutodiffBackend, Backend},
    Tensor,
};

use bench_models::{GaussianMixture, Point};

/// Scores a batch of samples (`[N, C, H, W]`: images in [0, 1]; the toy's points as
/// `[N, 2, 1, 1]`) with their prompts.
pub trait Reward<B: AutodiffBackend>: Send + Sync {
    /// The registry name.
    fn name(&self) -> &str;

    /// One score per sample, `[N]`, without a graph.
    fn score(
        &self,
        samples: Tensor<B::InnerBackend, 4>,
        prompts: &[String],
    ) -> Tensor<B::InnerBackend, 1>;

    /// The same score with its graph back to the samples, for objectives that differentiate
    /// the reward; `None` for a reward without a gradient (a JPEG size, a step function).
    fn differentiable(&self) -> Option<&dyn DifferentiableReward<B>> {
        None
    }

    /// Toy rewards expose their closed form, from which exact targets are built.
    fn as_toy(&self) -> Option<&dyn ToyReward> {
        None
    }
}

/// The differentiable side of a [`Reward`].
pub trait DifferentiableReward<B: AutodiffBackend>: Send + Sync {
    /// One score per sample, `[N]`, carrying gradients back to `samples`.
    fn score_with_graph(&self, samples: Tensor<B, 4>, prompts: &[String]) -> Tensor<B, 1>;
}

/// A reward written once as tensor code for every backend.
pub trait TensorReward: Send + Sync + 'static {
    fn name(&self) -> &str;

    fn score<B: Backend>(&self, samples: Tensor<B, 4>, prompts: &[String]) -> Tensor<B, 1>;

    /// Whether [`TensorReward::score`] has a useful gradient (false for step functions).
    fn differentiable(&self) -> bool {
        true
    }

    fn as_toy(&self) -> Option<&dyn ToyReward> {
        None
    }
}

/// A [`TensorReward`] as a [`Reward`]: the same code scores on the inner backend and, with its
/// graph, on the autodiff one.
pub struct OnAnyBackend<R>(pub R);

impl<B: AutodiffBackend, R: TensorReward> Reward<B> for OnAnyBackend<R> {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn score(
        &self,
        samples: Tensor<B::InnerBackend, 4>,
        prompts: &[String],
    ) -> Tensor<B::InnerBackend, 1> {
        self.0.score(samples, prompts)
    }

    fn differentiable(&self) -> Option<&dyn DifferentiableReward<B>> {
        self.0
            .differentiable()
            .then_some(self as &dyn DifferentiableReward<B>)
    }

    fn as_toy(&self) -> Option<&dyn ToyReward> {
        self.0.as_toy()
    }
}

impl<B: AutodiffBackend, R: TensorReward> DifferentiableReward<B> for OnAnyBackend<R> {
    fn score_with_graph(&self, samples: Tensor<B, 4>, prompts: &[String]) -> Tensor<B, 1> {
        self.0.score(samples, prompts)
    }
}

/// A reward on the 2-D toy with a host-side closed form `r(x)`.
pub trait ToyReward: Send + Sync {
    /// `r(x)`; the GFlowNet reward is `exp(β·r(x))`.
    fn value(&self, x: Point) -> f64;

    /// `exp(β·r)` normalised, when it is a Gaussian mixture.
    fn power_mixture(&self, beta: f64) -> Option<GaussianMixture>;

    /// `p(x)·exp(β·r(x))` normalised, when it is a Gaussian mixture.
    fn tilted_mixture(&self, base: &GaussianMixture, beta: f64) -> Option<GaussianMixture>;

    /// The modes of `exp(r)`, used to label samples when the target is `exp(β·r)` alone.
    fn modes(&self) -> GaussianMixture;
}

/// The differentiable side of `reward`, for `who` (an objective) that backpropagates through it.
///
/// # Errors
/// The reward has no gradient; the message names both and what to do.
pub fn require_gradient<'a, B: AutodiffBackend>(
    who: &str,
    reward: &'a dyn Reward<B>,
) -> Result<&'a dyn DifferentiableReward<B>, String> {
    reward.differentiable().ok_or_else(|| {
        format!(
            "{who} backpropagates through the reward, but reward `{}` is not differentiable; \
             use a differentiable reward or a gradient-free algorithm",
            reward.name()
        )
    })
}

/// ∇ of Σ r(samples) with respect to the samples, through burn's autodiff: one row of the
/// gradient per sample, of the samples' shape, without a graph.
///
/// # Errors
/// The reward is not differentiable, or does not depend on its samples (the message names it).
pub fn image_gradient<B: AutodiffBackend>(
    reward: &dyn Reward<B>,
    samples: Tensor<B, 4>,
    prompts: &[String],
) -> Result<Tensor<B, 4>, String> {
    let grad = require_gradient("the image gradient", reward)?;
    input_gradient(samples, |x| grad.score_with_graph(x, prompts))
        .ok_or_else(|| format!("reward `{}` does not depend on its samples", reward.name()))
}

/// ∇_x of Σ f(x) as a constant, `f` building its graph from a fresh leaf; `None` when `f`
/// does not depend on `x`.
pub fn input_gradient<B: AutodiffBackend, const D: usize>(
    x: Tensor<B, D>,
    f: impl FnOnce(Tensor<B, D>) -> Tensor<B, 1>,
) -> Option<Tensor<B, D>> {
    let leaf = x.detach().require_grad();
    let grads = f(leaf.clone()).sum().backward();
    leaf.grad(&grads).map(Tensor::from_inner)
}
