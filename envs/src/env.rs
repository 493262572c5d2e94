//! The diffusion environment trait: one interface for the 2-D toy and Stable Diffusion, so that
//! every algorithm is written once and verified on the toys.

use burn::module::AutodiffModule;
use burn::tensor::{backend::AutodiffBackend, Tensor};
use rand::rngs::StdRng;

use crate::gaussian::DiagGaussian;
use crate::sampler::Scheduler;

/// Which denoiser to evaluate: the finetuned policy or the frozen base model (LoRA off).
pub enum Denoiser<'a, P> {
    Policy(&'a P),
    Base,
}

impl<P> Clone for Denoiser<'_, P> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P> Copy for Denoiser<'_, P> {}

/// A conditional diffusion model seen as an MDP over flattened states `[N, dims]`.
///
/// States are flat so that samplers, log-probabilities and algorithms never depend on the
/// model's layout; an environment reshapes internally (SD: `[N, 4, 64, 64]`).
pub trait DiffusionEnv<B: AutodiffBackend>: Send + Sync {
    /// The trainable part (a LoRA or a small adapter) whose absence is the base model.
    type Policy: AutodiffModule<B> + Clone + Send + core::fmt::Debug + 'static;
    /// A network of the state (x_t, t, prompt) to one scalar: GFlowNet flows, value heads.
    type StateNet: AutodiffModule<B> + Clone + Send + core::fmt::Debug + 'static;
    /// A network of the state to a vector of the state's shape: ∇-GFlowNet's residual flow
    /// score g_φ (SD: a small UNet; the toy: an MLP).
    type FieldNet: AutodiffModule<B> + Clone + Send + core::fmt::Debug + 'static;

    fn device(&self) -> &B::Device;
    fn scheduler(&self) -> &Scheduler;
    /// The prompts training samples from; algorithms address them by index.
    fn prompts(&self) -> &[String];
    /// Number of dimensions of a flattened state.
    fn dims(&self) -> usize;

    /// A fresh policy that equals the base model exactly (zero-initialised output).
    fn init_policy(&self, rng: &mut StdRng) -> Self::Policy;
    fn init_state_net(&self, rng: &mut StdRng) -> Self::StateNet;
    /// A fresh vector field whose output starts at zero.
    fn init_field_net(&self, rng: &mut StdRng) -> Self::FieldNet;

    /// ε of the rows at inference steps `steps`, without guidance; `None` is the null prompt.
    fn eps_unguided(
        &self,
        net: Denoiser<'_, Self::Policy>,
        x: Tensor<B, 2>,
        steps: &[usize],
        prompts: Option<&[usize]>,
    ) -> Tensor<B, 2>;

    /// The scalar `net(x, t, prompt)` for states at trajectory positions `states`
    /// (0 = x_T, num_steps = x_0): `[N]`.
    fn state_value(
        &self,
        net: &Self::StateNet,
        x: Tensor<B, 2>,
        states: &[usize],
        prompts: &[usize],
    ) -> Tensor<B, 1>;

    /// The vector `net(x, t, prompt)` for states at trajectory positions `states`: `[N, dims]`.
    fn field(
        &self,
        net: &Self::FieldNet,
        x: Tensor<B, 2>,
        states: &[usize],
        prompts: &[usize],
    ) -> Tensor<B, 2>;

    /// States to images `[N, C, H, W]` (identity reshape for toys, the VAE for SD).
    fn decode(&self, x0: Tensor<B, 2>) -> Tensor<B, 4>;

    /// The guided ε: ε_∅ + w·(ε_c − ε_∅), or ε_c alone when w = 1.
    fn eps(
        &self,
        net: Denoiser<'_, Self::Policy>,
        x: Tensor<B, 2>,
        steps: &[usize],
        prompts: &[usize],
    ) -> Tensor<B, 2> {
        let w = self.scheduler().guidance();
        let cond = self.eps_unguided(net, x.clone(), steps, Some(prompts));
        if w == 1.0 {
            return cond;
        }
        let uncond = self.eps_unguided(net, x, steps, None);
        uncond.clone() + (cond - uncond).mul_scalar(w)
    }

    /// p(x_{t−1} | x_t) of `net` with guidance.
    fn transition(
        &self,
        net: Denoiser<'_, Self::Policy>,
        x: Tensor<B, 2>,
        steps: &[usize],
        prompts: &[usize],
    ) -> DiagGaussian<B> {
        let eps = self.eps(net, x.clone(), steps, prompts);
        self.scheduler().transition(x, eps, steps)
    }

    /// Prompt texts of a batch given by indices.
    fn prompt_texts(&self, prompts: &[usize]) -> Vec<String> {
        prompts.iter().map(|&i| self.prompts()[i].clone()).collect()
    }
}
