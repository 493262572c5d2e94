//! What a reward is to the rest of `bench`.

use burn::tensor::{
    backend::{AutodiffBackend, Backend},
    Tensor,
};

use bench_models::{GaussianMixture, Point};

/// Scores a batch of images (`[N, C, H, W]`, in [0, 1] for image rewards; toy rewards take
/// 2-D points as `[N, 2, 1, 1]`) with their prompts.
pub trait Reward<B: Backend>: Send + Sync {
    /// The registry name.
    fn name(&self) -> &str;

    /// One score per image: `[N]`. For a differentiable reward the result carries gradients
    /// back to `images` through burn's autodiff.
    fn score(&self, images: Tensor<B, 4>, prompts: &[String]) -> Tensor<B, 1>;

    /// Whether [`Reward::score`] is differentiable in its input.
    fn differentiable(&self) -> bool;

    /// Toy rewards expose their closed form, from which exact targets are built.
    fn as_toy(&self) -> Option<&dyn ToyReward> {
        None
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

/// ∇ of Σ r(images) with respect to the images, through burn's autodiff: one row of the
/// gradient per image, of the images' shape, without a graph.
///
/// # Errors
/// The reward is not differentiable (the message names it).
pub fn image_gradient<B: AutodiffBackend>(
    reward: &dyn Reward<B>,
    images: Tensor<B, 4>,
    prompts: &[String],
) -> Result<Tensor<B, 4>, String> {
    if !reward.differentiable() {
        return Err(format!(
            "reward `{}` is not differentiable: it has no gradient",
            reward.name()
        ));
    }
    input_gradient(images, |x| reward.score(x, prompts))
        .ok_or_else(|| format!("reward `{}` does not depend on its images", reward.name()))
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
