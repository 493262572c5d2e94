//! The environment traits.
//!
//! [`Environment`] is what every environment offers (prompts, the kind of sample it produces,
//! a trainable policy); [`DiffusionEnv`] adds a diffusion model seen as an MDP over flattened
//! states. A diffusion environment holds its model twice over the same weights: on the autodiff
//! backend ([`DiffusionEnv::train`]), where training differentiates, and on its inner backend
//! ([`DiffusionEnv::infer`]), where rollouts, evaluation, sampling and scoring run without
//! recording a graph. Code crosses from one to the other only where a gradient must flow:
//! `policy.valid()` takes a policy to the inner backend, `Tensor::from_inner` brings data back.

use std::path::Path;

use burn::module::{AutodiffModule, Module};
use burn::tensor::{
    backend::{AutodiffBackend, Backend},
    Tensor,
};
use rand::rngs::StdRng;

use bench_core::SampleKind;
use bench_models::GaussianMixture;

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

/// What plan-time checks, evaluation and metrics know of an environment, whatever its backend.
pub trait EnvInfo: Send + Sync {
    /// The prompts training samples from; algorithms address them by index.
    fn prompts(&self) -> &[String];

    /// What the final samples are; rewards and metrics that read another kind are refused.
    fn sample_kind(&self) -> SampleKind;

    /// The base model's exact output law for a prompt, where it is known in closed form (the
    /// 2-D toy); exact targets and the metrics against them are built from it.
    fn exact_base(&self, _prompt: usize) -> Option<GaussianMixture> {
        None
    }

    /// Prompt texts of a batch given by indices.
    fn prompt_texts(&self, prompts: &[usize]) -> Vec<String> {
        prompts.iter().map(|&i| self.prompts()[i].clone()).collect()
    }
}

/// An environment policies are trained in, diffusion or otherwise.
pub trait Environment<B: AutodiffBackend>: EnvInfo {
    /// The trainable part (a LoRA, a small adapter) whose absence is the base model.
    type Policy: AutodiffModule<B> + Clone + Send + core::fmt::Debug + 'static;

    fn device(&self) -> &B::Device;

    /// A fresh policy that equals the base model exactly (zero-initialised output).
    fn init_policy(&self, rng: &mut StdRng) -> Self::Policy;

    /// Samples per evaluation batch: what bounds evaluation memory on a large model. The toy
    /// draws each prompt's samples in one batch (its evaluations replay from their seed).
    fn eval_batch(&self) -> usize;

    /// Writes the finished policy below `dir` in a format other tools read (SD: the LoRA as
    /// diffusers' `pytorch_lora_weights.safetensors`); nothing by default.
    ///
    /// # Errors
    /// The files cannot be written.
    fn export_policy(&self, _policy: &Self::Policy, _dir: &Path) -> Result<(), String> {
        Ok(())
    }
}

/// A conditional diffusion model on one backend, seen as an MDP over flattened states
/// `[N, dims]`.
///
/// States are flat so that samplers, log-probabilities and algorithms never depend on the
/// model's layout; a model reshapes internally (SD: `[N, 4, 64, 64]`).
pub trait DiffusionModel<B: Backend>: Send + Sync {
    /// The trainable part (LoRA or adapter); [`Denoiser::Base`] is the model without it.
    type Policy: Module<B> + Clone + Send + core::fmt::Debug;
    /// A network of the state (x_t, t, prompt) to one scalar: GFlowNet flows, value heads.
    type StateNet: Module<B> + Clone + Send + core::fmt::Debug;
    /// A network of the state to a vector of the state's shape: ∇-GFlowNet's residual flow
    /// score g_φ (SD: a small UNet; the toy: an MLP).
    type FieldNet: Module<B> + Clone + Send + core::fmt::Debug;

    fn device(&self) -> &B::Device;
    fn scheduler(&self) -> &Scheduler;
    /// Number of dimensions of a flattened state.
    fn dims(&self) -> usize;

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

    /// The exact log-flows log F(x) of states at trajectory positions `states`, in true
    /// (summed) log units, where the environment knows the run's exact solution (the toy with
    /// `exact_flows`); `None` elsewhere, and detailed balance learns its flow.
    fn exact_log_flow(
        &self,
        _x: Tensor<B, 2>,
        _states: &[usize],
        _prompts: &[usize],
    ) -> Option<Tensor<B, 1>> {
        None
    }

    /// States to samples `[N, C, H, W]` (the toy's points as `[N, 2, 1, 1]`, SD's VAE decode
    /// to images in [0, 1]).
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
}

/// A module's twin on the inner backend.
pub type Inner<B, M> = <M as AutodiffModule<B>>::InnerModule;

/// A diffusion environment: its model on the autodiff backend for training and on the inner
/// backend for everything else, over the same weights.
pub trait DiffusionEnv<B: AutodiffBackend>: Environment<B> {
    type StateNet: AutodiffModule<B> + Clone + Send + core::fmt::Debug + 'static;
    type FieldNet: AutodiffModule<B> + Clone + Send + core::fmt::Debug + 'static;
    /// The model training differentiates through.
    type Train: DiffusionModel<
        B,
        Policy = Self::Policy,
        StateNet = Self::StateNet,
        FieldNet = Self::FieldNet,
    >;
    /// The same model on the inner backend: rollouts, evaluation, sampling, scoring.
    type Infer: DiffusionModel<
        B::InnerBackend,
        Policy = Inner<B, Self::Policy>,
        StateNet = Inner<B, Self::StateNet>,
        FieldNet = Inner<B, Self::FieldNet>,
    >;

    fn train(&self) -> &Self::Train;
    fn infer(&self) -> &Self::Infer;

    fn init_state_net(&self, rng: &mut StdRng) -> Self::StateNet;
    /// A fresh vector field whose output starts at zero.
    fn init_field_net(&self, rng: &mut StdRng) -> Self::FieldNet;

    fn scheduler(&self) -> &Scheduler {
        self.train().scheduler()
    }

    fn dims(&self) -> usize {
        self.train().dims()
    }
}
