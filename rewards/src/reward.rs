//! What a reward is to the rest of `bench`.

use burn::tensor::{backend::Backend, Tensor};

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
