//! ∇-GFlowNet's defining properties on the linear-Gaussian diffusion, where its exact
//! solution is known in closed form: with r = a·x and base N(m, s²I), the residual flow is
//! log F̃_j(x) = b_j·x + const with b_T = β·a and b_k = c_k·b_{k+1} (c_k = ∂μ_base/∂x_t at step
//! k); the exact policy shifts the base mean by σ_k²·b_{k+1}, and g_φ(x_j) = b_j −
//! β·γ_j·∂x̂₀/∂x·a.

use burn::tensor::{Tensor, TensorData};
use rand::{rngs::StdRng, SeedableRng};

use crate::common::*;
use bench_algorithms::nabla_gfn::{
    losses, position_major, prepare, stratified_rows, NablaBatch, NablaGfnConfig, NablaNoise,
};
use bench_envs::{rollout, Denoiser, DiffusionEnv, DiffusionModel};
use bench_rewards::Reward;
use burn::module::AutodiffModule;

const BETA: f64 = 2.0;
const A: [f64; D] = [0.7, -0.4];

fn config(w_b: f64) -> NablaGfnConfig {
    NablaGfnConfig {
        beta: BETA,
        w_b,
        reward_smoothing: 0.0,
        reg_coef: 1.0,
        strata: 0,
        ..NablaGfnConfig::default()
    }
}

/// (A_k, B_k): μ = A_k·x + B_k·ε at step k, read off the scheduler (it is affine).
fn mean_coefficients(env: &LinearGaussian, k: usize) -> (f64, f64) {
    let mean = |x: f32, e: f32| {
        let t = |v| Tensor::<AB, 2>::from_data(TensorData::new(vec![v, v], [1, D]), &env.device);
        env.scheduler
            .transition(t(x), t(e), &[k])
            .mean
            .into_data()
            .to_vec::<f32>()
            .unwrap()[0] as f64
    };
    let zero = mean(0.0, 0.0);
    (mean(1.0, 0.0) - zero, mean(0.0, 1.0) - zero)
}

/// The exact policy offsets `[T, D]` and g_φ `[T+1, D]`.
fn exact_solution(env: &LinearGaussian) -> (Vec<f32>, Vec<f32>) {
    let t = env.steps();
    let s = env.scheduler.schedule();
    let mut b = vec![[0.0; D]; t + 1];
    b[t] = A.map(|a| BETA * a);
    let mut offsets = vec![0.0f32; t * D];
    for k in (0..t).rev() {
        let (ak, bk) = mean_coefficients(env, k);
        let de_dx = (1.0 - s.alpha_bar(k)).sqrt() / env.var(k);
        let c = ak + bk * de_dx;
        let sigma2 = env.scheduler.transition_std(k).powi(2);
        for d in 0..D {
            b[k][d] = c * b[k + 1][d];
            offsets[k * D + d] = (sigma2 * b[k + 1][d] / bk) as f32;
        }
    }
    let mut field = vec![0.0f32; (t + 1) * D];
    for j in 0..t {
        let a = s.alpha_bar(j);
        let dx0_dx = a.sqrt() * env.std * env.std / env.var(j);
        for d in 0..D {
            field[j * D + d] = (b[j][d] - BETA * a * dx0_dx * A[d]) as f32;
        }
    }
    (offsets, field)
}

fn batch(
    env: &LinearGaussian,
    reward: &dyn Reward<AB>,
    policy: &Table<AB>,
    c: &NablaGfnConfig,
) -> NablaBatch<AB> {
    let ctx = context(env, reward);
    let mut rng = StdRng::seed_from_u64(3);
    let traj = rollout(
        env.infer(),
        Denoiser::Policy(&policy.valid()),
        vec![0; 16],
        &mut rng,
    )
    .lift();
    let every = stratified_rows(traj.batch_size(), traj.num_steps(), 0, &mut rng);
    let rows = traj.gather(&position_major(&every));
    let noise = NablaNoise::draw(&rows.steps, env.steps(), D, c, &mut rng);
    let all: Vec<usize> = (0..rows.steps.len()).collect();
    prepare(
        ctx.env,
        gradient_of(reward),
        c,
        policy,
        rows,
        traj.final_states(),
        traj.prompts.clone(),
        noise.rows(&all, &env.device),
    )
}

#[test]
fn every_loss_vanishes_at_the_exact_solution() {
    let env = LinearGaussian::new(10);
    let reward = LinearReward(A);
    let (offsets, field) = exact_solution(&env);
    let policy = env.policy(offsets);
    let field = env.field(field);
    let c = config(1.0);
    let b = batch(&env, &reward, &policy, &c);
    let l = losses(&env, &c, &policy, &field, &policy.valid(), &b);
    let value = |t: Tensor<AB, 1>| t.into_scalar() as f64;
    // Measured: forward and reverse ≈ 5e-10 (f32 rounding of scores that reach O(10²) at the
    // last steps), terminal and reg exactly 0; a 0.05 perturbation gives > 1e-2.
    for (name, v, tol) in [
        ("forward", value(l.forward.clone()), 1e-6),
        ("reverse", value(l.reverse.clone()), 1e-6),
        ("terminal", value(l.terminal.clone()), 1e-12),
        ("reg", value(l.reg.clone()), 1e-12),
    ] {
        assert!(v < tol, "{name} loss {v} at the exact solution");
    }
    // And a perturbed solution is visibly off, so the check above can fail.
    let wrong = shifted(
        &policy,
        &pseudo_random(env.steps() * D, 1),
        0.05,
        env.steps(),
    );
    let l = losses(&env, &c, &wrong, &field, &policy.valid(), &b);
    assert!(value(l.forward) > 1e-2);
}

#[test]
fn loss_gradients_match_finite_differences_away_from_the_solution() {
    let env = LinearGaussian::new(6);
    let reward = LinearReward(A);
    let (offsets, field) = exact_solution(&env);
    let rows = env.steps();
    let policy = shifted(
        &env.policy(offsets),
        &pseudo_random(rows * D, 5),
        0.02,
        rows,
    );
    let field = shifted(
        &env.field(field),
        &pseudo_random((rows + 1) * D, 6),
        0.3,
        rows + 1,
    );
    let old = shifted(&policy, &pseudo_random(rows * D, 9), 0.01, rows).valid();
    for w_b in [0.0, 1.0] {
        let c = config(w_b);
        let b = batch(&env, &reward, &policy, &c);
        let total = |p: &Table<AB>, f: &Table<AB>| losses(&env, &c, p, f, &old, &b).total(&c);
        let grads = total(&policy, &field).backward();
        let host = |t: &Table<AB>| {
            t.values
                .grad(&grads)
                .map(|g| g.into_data().to_vec::<f32>().unwrap())
                .unwrap()
        };
        let (gp, gf) = (host(&policy), host(&field));
        let (vp, vf) = (pseudo_random(gp.len(), 11), pseudo_random(gf.len(), 12));
        let f = |h: f32| {
            total(
                &shifted(&policy, &vp, h, rows),
                &shifted(&field, &vf, h, rows + 1),
            )
            .into_scalar() as f64
        };
        let h = 1e-3;
        let numeric = (f(h) - f(-h)) / (2.0 * h as f64);
        let analytic = dot(&gp, &vp) + dot(&gf, &vf);
        assert!(
            (numeric - analytic).abs() <= 2e-2 * analytic.abs().max(1.0),
            "w_B = {w_b}: finite differences {numeric} vs autodiff {analytic}"
        );
    }
}

#[test]
fn the_closed_form_forward_score_is_the_autodiff_score() {
    let env = LinearGaussian::new(6);
    let policy = env.policy(pseudo_random(env.steps() * D, 2));
    let mut rng = StdRng::seed_from_u64(0);
    let traj = rollout(
        env.infer(),
        Denoiser::Policy(&policy.valid()),
        vec![0; 8],
        &mut rng,
    )
    .lift();
    let s = traj.stack(&(0..env.steps()).collect::<Vec<_>>());
    let gaussian = env.transition(Denoiser::Policy(&policy), s.x_t, &s.steps, &s.prompts);
    let closed = ((gaussian.mean.clone() - s.x_next.clone()) / gaussian.std.clone().powi_scalar(2))
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let auto = bench_algorithms::reward_gradient::gradient_wrt_input(s.x_next, |x| {
        gaussian.log_prob(x, bench_envs::LogProbReduction::Sum)
    })
    .into_data()
    .to_vec::<f32>()
    .unwrap();
    for (c, a) in closed.iter().zip(&auto) {
        assert!((c - a).abs() <= 1e-4 * c.abs().max(1.0), "{c} vs {a}");
    }
}
