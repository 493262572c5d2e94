//! The toy's instruments (`oracle`, `exact_flows`) need the run's exact solution, which only
//! the harness can derive: the environment knows its scenes, the objective its target kind and
//! β, the reward its closed form. A run with instruments gets its own toy, built from the plain
//! one's base laws and the run's components.

use bench_algorithms::TargetSpec;
use bench_envs::toy2d::{ExactSolution, Toy2d};
use bench_envs::EnvInfo;
use bench_models::GaussianMixture;
use bench_rewards::toy::TargetKind;
use bench_rewards::ToyReward;

use crate::backend::HarnessBackend;
use crate::plan;
use crate::plugins::Plugins;
use crate::resources::Resources;
use crate::sweep::PlannedRun;

/// The exact solution of `run` on the plain toy `env` (its components built on it).
///
/// # Errors
/// The run's components fail to build, the run has no exact target, or the target has no
/// closed form.
pub fn run_solution<B: HarnessBackend>(
    run: &PlannedRun,
    env: &Toy2d<B>,
    plugins: &Plugins,
    resources: &Resources<B>,
) -> Result<ExactSolution, String> {
    let components = plan::build(run, env, plugins, resources)?;
    let spec = components.target.ok_or(
        "oracle and exact_flows need the run's exact target, but the objective matches no \
         distribution and eval.target is not set",
    )?;
    let toy = components.reward.as_toy().ok_or_else(|| {
        format!(
            "oracle and exact_flows need a toy reward with a closed form; `{}` is none",
            run.config.reward.name
        )
    })?;
    let bases: Vec<GaussianMixture> = (0..env.prompts().len())
        .map(|p| env.base_distribution(p))
        .collect();
    solution(spec, toy, &bases).map_err(|e| {
        format!(
            "oracle and exact_flows: reward `{}`: {e}",
            run.config.reward.name
        )
    })
}

/// The solution for target `spec` of `reward` over each prompt's base law (the sampler's
/// exact output law).
///
/// # Errors
/// The target is not a Gaussian mixture in closed form (e.g. `mixture` at β ≠ 1).
pub fn solution(
    spec: TargetSpec,
    reward: &dyn ToyReward,
    bases: &[GaussianMixture],
) -> Result<ExactSolution, String> {
    let mut targets = Vec::with_capacity(bases.len());
    let mut log_z = Vec::with_capacity(bases.len());
    for base in bases {
        let target = match spec.kind {
            TargetKind::Power => reward.power_mixture(spec.beta),
            // exp(β·r) as a mixture makes the tilted target a product of two mixtures.
            TargetKind::Tilted => reward
                .tilted_mixture(base, spec.beta)
                .or_else(|| Some(base.product(&reward.power_mixture(spec.beta)?))),
        }
        .ok_or_else(|| {
            format!(
                "its {:?} target at β = {} has no closed form",
                spec.kind, spec.beta
            )
        })?;
        // p* = exp(β·r)·[p_base]/Z exactly, so log Z is the same at every point: read it at the
        // target's heaviest component, where nothing underflows.
        let x = target
            .components()
            .iter()
            .max_by(|a, b| a.weight.total_cmp(&b.weight))
            .expect("a mixture has a component")
            .mean;
        let relative = match spec.kind {
            TargetKind::Power => 0.0,
            TargetKind::Tilted => base.log_density(x),
        };
        log_z.push(spec.beta * reward.value(x) + relative - target.log_density(x));
        targets.push(target);
    }
    Ok(ExactSolution {
        targets,
        log_z,
        relative_to_base: spec.kind == TargetKind::Tilted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bench_rewards::toy::{Bump, BumpConfig};

    #[test]
    fn log_z_normalises_the_reward_at_every_point() {
        let bump = Bump::new(BumpConfig::default()).unwrap();
        let base = GaussianMixture::ring(8, 1.0, 0.1);
        for kind in [TargetKind::Power, TargetKind::Tilted] {
            let s = solution(
                TargetSpec { kind, beta: 2.0 },
                &bump,
                std::slice::from_ref(&base),
            )
            .unwrap();
            for x in [[0.0, 0.0], [0.9, 0.3], [-0.5, 1.0]] {
                let relative = if kind == TargetKind::Tilted {
                    base.log_density(x)
                } else {
                    0.0
                };
                let lhs = s.log_z[0] + s.targets[0].log_density(x);
                assert!(
                    (lhs - 2.0 * bump.value(x) - relative).abs() < 1e-9,
                    "{kind:?} at {x:?}"
                );
            }
            assert_eq!(s.relative_to_base, kind == TargetKind::Tilted);
        }
        // The bump's exp(2r) integrates to 2π·width²/2.
        let s = solution(
            TargetSpec {
                kind: TargetKind::Power,
                beta: 2.0,
            },
            &bump,
            &[base],
        )
        .unwrap();
        assert!((s.log_z[0] - (std::f64::consts::PI * 0.25).ln()).abs() < 1e-12);
    }
}
