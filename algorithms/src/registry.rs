//! Objectives by name. An objective is registered once, as an [`Objective`], and builds on
//! every diffusion environment: the registry keeps one monomorphised factory per environment
//! type it serves (the harness's registry, one per environment it knows; tests and benches use
//! [`builtin_algorithms`] for a single environment type).

use burn::tensor::backend::AutodiffBackend;
use rand::rngs::StdRng;

use bench_core::params::from_resolved;
use bench_core::{Params, ParamsCodec, ParamsText, Registry, Source};
use bench_envs::DiffusionEnv;

use crate::algorithm::Algorithm;

/// A finetuning objective as a plugin: its typed parameters and how it builds on any diffusion
/// environment.
pub trait Objective: 'static {
    /// Its parameters (`params: (...)` in a sweep); every field has a default.
    type Params: Params;

    /// A fresh instance for `env`; `rng` initialises its networks.
    ///
    /// # Errors
    /// Parameters that cannot work on `env` (the message names the field).
    fn build<B: AutodiffBackend, E: DiffusionEnv<B> + 'static>(
        params: &Self::Params,
        env: &E,
        rng: &mut StdRng,
    ) -> Result<Box<dyn Algorithm<B, E>>, String>;
}

type Build<B, E> = fn(&str, &E, &mut StdRng) -> Result<Box<dyn Algorithm<B, E>>, String>;

/// A registered objective for environments of type `E`, its types erased.
pub struct AlgorithmEntry<B: AutodiffBackend, E: DiffusionEnv<B>> {
    pub params: ParamsCodec,
    build: Build<B, E>,
}

fn build_from<O: Objective, B: AutodiffBackend, E: DiffusionEnv<B> + 'static>(
    resolved: &str,
    env: &E,
    rng: &mut StdRng,
) -> Result<Box<dyn Algorithm<B, E>>, String> {
    O::build(&from_resolved::<O::Params>(resolved)?, env, rng)
}

impl<B: AutodiffBackend, E: DiffusionEnv<B> + 'static> AlgorithmEntry<B, E> {
    pub fn of<O: Objective>() -> Self {
        Self {
            params: ParamsCodec::of::<O::Params>(),
            build: build_from::<O, B, E>,
        }
    }

    /// Builds from resolved parameters (see [`bench_core::params`]).
    ///
    /// # Errors
    /// As [`Objective::build`].
    pub fn build(
        &self,
        resolved: &str,
        env: &E,
        rng: &mut StdRng,
    ) -> Result<Box<dyn Algorithm<B, E>>, String> {
        (self.build)(resolved, env, rng)
    }
}

/// Objectives for one environment type.
pub type AlgorithmRegistry<B, E> = Registry<AlgorithmEntry<B, E>>;

/// What objectives are registered into: the harness implements it with a factory per
/// environment type; [`AlgorithmRegistry`] with one.
pub trait RegisterObjective {
    fn objective<O: Objective>(&mut self, name: &str, about: &'static str);
}

impl<B: AutodiffBackend, E: DiffusionEnv<B> + 'static> RegisterObjective
    for AlgorithmRegistry<B, E>
{
    fn objective<O: Objective>(&mut self, name: &str, about: &'static str) {
        self.register(name, about, AlgorithmEntry::of::<O>());
    }
}

/// Registers the built-in objectives.
pub fn register_builtin(r: &mut impl RegisterObjective) {
    use crate::*;
    r.objective::<ddpo::Ddpo>(
        "ddpo",
        "DDPO: PPO-clip on per-step log-prob ratios with per-prompt advantages",
    );
    r.objective::<dag_db::DagDb>(
        "dag_db",
        "DAG-DB: GFlowNet detailed balance with a forward-looking flow (exp(β·r), or tilted)",
    );
    r.objective::<dag_kl::DagKl>(
        "dag_kl",
        "DAG-KL: the flow learns by DB, the policy by a PPO-clipped REINFORCE-KL surrogate",
    );
    r.objective::<residual_db::ResidualDb>(
        "residual_db",
        "residual DB (∇-GFlowNet Eq. 20): forward-looking DB of p_θ/p_base towards p_base·R^β",
    );
    r.objective::<sub_tb::SubTb>(
        "dag_subtb",
        "SubTB(λ) over the denoising chain on DAG-DB's loop: every sub-trajectory, weighted λ^length",
    );
    r.objective::<sub_tb::Tb>(
        "dag_tb",
        "trajectory balance over the denoising chain on DAG-DB's loop (tilted: relative TB)",
    );
    r.objective::<nabla_gfn::NablaGfn>(
        "nabla_gfn",
        "∇-GFlowNet: residual ∇-DB on scores with reward gradients, towards p_base·R^β",
    );
    r.objective::<dpok::Dpok>(
        "dpok",
        "DPOK: PPO-clipped policy gradient with a per-step KL to the pretrained model",
    );
    r.objective::<refl::Refl>(
        "refl",
        "ReFL: maximise r(x̂₀) from a detached state at a random late step",
    );
    r.objective::<draft::Draft>(
        "draft",
        "DRaFT-K: backpropagate r(x₀) through the last K sampling steps (DRaFT-1: K = 1)",
    );
    r.objective::<draft_lv::DraftLv>(
        "draft_lv",
        "DRaFT-LV: noise the sample one step back, denoise it differentiably, maximise r",
    );
}

/// The built-in objectives for environments of type `E`.
pub fn builtin_algorithms<B: AutodiffBackend, E: DiffusionEnv<B> + 'static>(
) -> AlgorithmRegistry<B, E> {
    let mut r = Registry::new("algorithm");
    register_builtin(&mut r);
    r
}

/// Builds `name` from parameters written as RON text (`"(beta: 1.0)"`), as a sweep would:
/// for tests, benches and scripts.
///
/// # Errors
/// An unknown name, bad parameters, or parameters that cannot work on `env`.
pub fn build<B: AutodiffBackend, E: DiffusionEnv<B> + 'static>(
    registry: &AlgorithmRegistry<B, E>,
    name: &str,
    params: &str,
    env: &E,
    rng: &mut StdRng,
) -> Result<Box<dyn Algorithm<B, E>>, String> {
    let entry = registry.get(name)?;
    let source = Source::new("params", params);
    let resolved = entry
        .params
        .resolve(&ParamsText::parse(&source, &source.text)?, &source)?;
    entry
        .build(&resolved, env, rng)
        .map_err(|e| format!("algorithm `{name}`: {e}"))
}
