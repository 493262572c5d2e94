//! Sampling with DPM-Solver++ (2M) and its SDE variant, whose steps depend on the previous
//! step's x̂₀: not Markov in x, so they sample (`bench sample`) but are not training MDPs.

use burn::tensor::{backend::Backend, Tensor};
use rand::rngs::StdRng;

use bench_models::sd::UNetLora;

use super::model::SdModel;
use crate::dpm_solver::DpmSolver;
use crate::env::{Denoiser, DiffusionModel};
use crate::rollout::normal_tensor;

/// Final states from `x` (x_T) with `solver`, carrying x̂₀ from step to step; `on_step` is
/// called after each step with the number of steps done.
pub fn dpm_solve<B: Backend>(
    model: &SdModel<B>,
    net: Denoiser<'_, UNetLora<B>>,
    solver: &DpmSolver,
    mut x: Tensor<B, 2>,
    prompts: &[usize],
    rng: &mut StdRng,
    mut on_step: impl FnMut(usize),
) -> Tensor<B, 2> {
    let n = prompts.len();
    let mut prev_x0 = None;
    for (i, &t) in solver.timesteps().iter().enumerate() {
        let eps = model.guided_eps_at(net, x.clone(), &vec![t; n], prompts);
        let (transition, x0) = solver.transition(x, eps, i, prev_x0);
        x = transition.sample(normal_tensor(n, model.dims(), rng, model.device()));
        prev_x0 = Some(x0);
        on_step(i + 1);
    }
    x
}
