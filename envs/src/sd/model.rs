//! `SdModel`: SD v1.x as a diffusion model over latents on one backend — the frozen UNet and
//! VAE, the text-encoder states of a prompt list and of the negative prompt, and a scheduler.
//! The environment holds one for training and one for inference; `bench sample` builds one for
//! its prompts.

use burn::module::{AutodiffModule, Module};
use burn::tensor::{
    backend::{AutodiffBackend, Backend},
    Int, Tensor, TensorData,
};

use bench_models::sd::{AutoencoderKl, UNet2DConditionModel, UNetLora};

use super::networks::{SdFieldNet, SdStateNet};
use super::pipeline::SdPipeline;
use crate::env::{Denoiser, DiffusionModel};
use crate::sampler::Scheduler;

/// SD over one prompt list with one scheduler. States are latents `[N, C, h, w]` flattened
/// to `[N, C·h·w]`; [`DiffusionModel::decode`] is the VAE, to images in [0, 1].
#[derive(Clone, Debug)]
pub struct SdModel<B: Backend> {
    device: B::Device,
    scheduler: Scheduler,
    unet: UNet2DConditionModel<B>,
    vae: AutoencoderKl<B>,
    /// Text-encoder states of the prompts `[P, 77, C]` and of the negative prompt `[1, 77, C]`.
    cond: Tensor<B, 3>,
    null: Tensor<B, 3>,
    /// Latent shape `[channels, h, w]`.
    latent: [usize; 3],
}

impl<B: Backend> SdModel<B> {
    /// `pipeline`'s networks over `prompts` at `resolution` pixels; the prompts and the negative
    /// prompt are encoded once, here.
    ///
    /// # Errors
    /// A resolution the networks cannot take.
    pub fn new(
        pipeline: &SdPipeline<B>,
        prompts: &[String],
        negative_prompt: &str,
        resolution: usize,
        scheduler: Scheduler,
    ) -> Result<Self, String> {
        let latent = pipeline.latent_shape(resolution)?;
        let device = pipeline.unet.conv_in.weight.device();
        Ok(Self {
            cond: pipeline.encode(prompts),
            null: pipeline.encode(&[negative_prompt.to_string()]),
            unet: pipeline.unet.clone(),
            vae: pipeline.vae.clone(),
            latent,
            scheduler,
            device,
        })
    }

    pub fn unet(&self) -> &UNet2DConditionModel<B> {
        &self.unet
    }

    /// Latent shape `[channels, h, w]`.
    pub fn latent_shape(&self) -> [usize; 3] {
        self.latent
    }

    /// Width of the text context.
    pub fn context_dim(&self) -> usize {
        self.cond.dims()[2]
    }

    /// Flat states `[N, D]` as latents `[N, C, h, w]`.
    pub fn latents(&self, x: Tensor<B, 2>) -> Tensor<B, 4> {
        let [c, h, w] = self.latent;
        let n = x.dims()[0];
        x.reshape([n, c, h, w])
    }

    /// The text context of each row: a prompt's, or the negative prompt's for `None`.
    fn context(&self, prompts: Option<&[usize]>, n: usize) -> Tensor<B, 3> {
        match prompts {
            Some(p) => {
                let idx = Tensor::<B, 1, Int>::from_data(
                    TensorData::new(p.iter().map(|&i| i as i64).collect::<Vec<_>>(), [p.len()]),
                    &self.device,
                );
                self.cond.clone().select(0, idx)
            }
            None => self.null.clone().repeat_dim(0, n),
        }
    }

    /// Training-schedule timesteps `[N]` of the given per-row timestep values.
    fn timesteps(&self, t: impl Iterator<Item = usize>) -> Tensor<B, 1> {
        let t: Vec<f32> = t.map(|t| t as f32).collect();
        let n = t.len();
        Tensor::from_data(TensorData::new(t, [n]), &self.device)
    }

    /// ε of the UNet at training-schedule `timesteps` (one per row), for the given contexts.
    fn unet_eps(
        &self,
        net: Denoiser<'_, UNetLora<B>>,
        x: Tensor<B, 2>,
        timesteps: &[usize],
        context: Tensor<B, 3>,
    ) -> Tensor<B, 2> {
        let t = self.timesteps(timesteps.iter().copied());
        let lora = match net {
            Denoiser::Policy(p) => Some(p),
            Denoiser::Base => None,
        };
        let [n, d] = x.dims();
        self.unet
            .forward_with_lora(self.latents(x), t, context, lora)
            .reshape([n, d])
    }

    /// The guided ε at training-schedule timesteps (any sampler's, e.g. DPM-Solver's), with
    /// both CFG branches in one UNet call (unconditional rows first, as diffusers does).
    pub fn guided_eps_at(
        &self,
        net: Denoiser<'_, UNetLora<B>>,
        x: Tensor<B, 2>,
        timesteps: &[usize],
        prompts: &[usize],
    ) -> Tensor<B, 2> {
        let w = self.scheduler.guidance();
        let n = timesteps.len();
        if w == 1.0 {
            return self.unet_eps(net, x, timesteps, self.context(Some(prompts), n));
        }
        let context = Tensor::cat(
            vec![self.context(None, n), self.context(Some(prompts), n)],
            0,
        );
        let both: Vec<usize> = timesteps.iter().chain(timesteps).copied().collect();
        let eps = self.unet_eps(net, Tensor::cat(vec![x.clone(), x], 0), &both, context);
        let uncond = eps.clone().narrow(0, 0, n);
        let cond = eps.narrow(0, n, n);
        uncond.clone() + (cond - uncond).mul_scalar(w)
    }

    fn step_timesteps(&self, steps: &[usize]) -> Vec<usize> {
        let s = self.scheduler.schedule();
        steps.iter().map(|&k| s.timestep(k)).collect()
    }

    fn state_inputs(
        &self,
        x: Tensor<B, 2>,
        states: &[usize],
        prompts: &[usize],
    ) -> (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 3>) {
        let s = self.scheduler.schedule();
        let t = self.timesteps(states.iter().map(|&i| s.timestep_of_state(i)));
        (
            self.latents(x),
            t,
            self.context(Some(prompts), prompts.len()),
        )
    }
}

impl<B: AutodiffBackend> SdModel<B> {
    /// The model of `inner` on the autodiff backend over the same weights and text states:
    /// constants of the graph (the UNet and VAE are frozen), through which gradients reach the
    /// LoRA and the latents.
    pub fn lift(inner: &SdModel<B::InnerBackend>) -> Self {
        Self {
            device: inner.device.clone(),
            scheduler: inner.scheduler.clone(),
            unet: UNet2DConditionModel::from_inner(inner.unet.clone()).no_grad(),
            vae: AutoencoderKl::from_inner(inner.vae.clone()).no_grad(),
            cond: Tensor::from_inner(inner.cond.clone()),
            null: Tensor::from_inner(inner.null.clone()),
            latent: inner.latent,
        }
    }
}

impl<B: Backend> DiffusionModel<B> for SdModel<B> {
    type Policy = UNetLora<B>;
    type StateNet = SdStateNet<B>;
    type FieldNet = SdFieldNet<B>;

    fn device(&self) -> &B::Device {
        &self.device
    }

    fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    fn dims(&self) -> usize {
        self.latent.iter().product()
    }

    fn eps_unguided(
        &self,
        net: Denoiser<'_, UNetLora<B>>,
        x: Tensor<B, 2>,
        steps: &[usize],
        prompts: Option<&[usize]>,
    ) -> Tensor<B, 2> {
        let context = self.context(prompts, steps.len());
        self.unet_eps(net, x, &self.step_timesteps(steps), context)
    }

    /// Both CFG branches in one UNet call.
    fn eps(
        &self,
        net: Denoiser<'_, UNetLora<B>>,
        x: Tensor<B, 2>,
        steps: &[usize],
        prompts: &[usize],
    ) -> Tensor<B, 2> {
        self.guided_eps_at(net, x, &self.step_timesteps(steps), prompts)
    }

    fn state_value(
        &self,
        net: &SdStateNet<B>,
        x: Tensor<B, 2>,
        states: &[usize],
        prompts: &[usize],
    ) -> Tensor<B, 1> {
        let (x, t, ctx) = self.state_inputs(x, states, prompts);
        net.forward(x, t, ctx)
    }

    fn field(
        &self,
        net: &SdFieldNet<B>,
        x: Tensor<B, 2>,
        states: &[usize],
        prompts: &[usize],
    ) -> Tensor<B, 2> {
        let [n, d] = x.dims();
        let (x, t, ctx) = self.state_inputs(x, states, prompts);
        net.forward(x, t, ctx).reshape([n, d])
    }

    fn decode(&self, x0: Tensor<B, 2>) -> Tensor<B, 4> {
        self.vae.decode_latents(self.latents(x0))
    }
}
