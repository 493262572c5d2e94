//! Algorithms by name.

use burn::tensor::backend::AutodiffBackend;
use rand::rngs::StdRng;

use bench_envs::DiffusionEnv;
use bench_rewards::Registry;

use crate::algorithm::Algorithm;

/// Builds an algorithm from its RON parameters for an environment; the RNG initialises its
/// networks.
pub type AlgorithmFactory<B, E> =
    fn(&ron::Value, &E, &mut StdRng) -> Result<Box<dyn Algorithm<B, E>>, String>;

/// Algorithms by name. Plugins add theirs with [`Registry::register`].
pub type AlgorithmRegistry<B, E> = Registry<AlgorithmFactory<B, E>>;

/// The built-in algorithms.
pub fn builtin_algorithms<B: AutodiffBackend, E: DiffusionEnv<B> + 'static>(
) -> AlgorithmRegistry<B, E> {
    let mut r = Registry::new("algorithm");
    r.register(
        "ddpo",
        "DDPO: PPO-clip on per-step log-prob ratios with per-prompt advantages",
        crate::ddpo::Ddpo::build as AlgorithmFactory<B, E>,
    );
    r.register(
        "dag_db",
        "DAG-DB: GFlowNet detailed balance with a forward-looking flow (exp(β·r), or tilted)",
        crate::dag_db::DagDb::build,
    );
    r.register(
        "dag_kl",
        "DAG-KL: the flow learns by DB, the policy by a PPO-clipped REINFORCE-KL surrogate",
        crate::dag_kl::DagKl::build,
    );
    r.register(
        "residual_db",
        "residual DB (∇-GFlowNet Eq. 20): forward-looking DB of p_θ/p_base towards p_base·R^β",
        crate::residual_db::ResidualDb::build,
    );
    r.register(
        "nabla_gfn",
        "∇-GFlowNet: residual ∇-DB on scores with reward gradients, towards p_base·R^β",
        crate::nabla_gfn::NablaGfn::build,
    );
    r.register(
        "dpok",
        "DPOK: PPO-clipped policy gradient with a per-step KL to the pretrained model",
        crate::dpok::Dpok::build,
    );
    r.register(
        "refl",
        "ReFL: maximise r(x̂₀) from a detached state at a random late step",
        crate::refl::Refl::build,
    );
    r.register(
        "draft",
        "DRaFT-K: backpropagate r(x₀) through the last K sampling steps (DRaFT-1: K = 1)",
        crate::draft::Draft::build,
    );
    r.register(
        "draft_lv",
        "DRaFT-LV: noise the sample one step back, denoise it differentiably, maximise r",
        crate::draft_lv::DraftLv::build,
    );
    r
}

/// Builds `name` for `env`.
///
/// # Errors
/// An unknown name (listing the known ones) or invalid parameters.
pub fn build<B: AutodiffBackend, E: DiffusionEnv<B>>(
    registry: &AlgorithmRegistry<B, E>,
    name: &str,
    params: &ron::Value,
    env: &E,
    rng: &mut StdRng,
) -> Result<Box<dyn Algorithm<B, E>>, String> {
    registry.get(name)?(params, env, rng).map_err(|e| format!("algorithm `{name}`: {e}"))
}
