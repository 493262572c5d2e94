//! The detailed-balance family on the linear-Gaussian diffusion: residual DB telescopes to the
//! relative trajectory balance (∇-GFlowNet Appendix B.4), and DAG-KL's policy gradient is, on
//! policy and in expectation, the gradient of the KL it is derived from and half of DAG-DB's
//! (DAG, Proposition 4 and Remark 5).

use burn::module::{AutodiffModule, Param};
use burn::tensor::{Tensor, TensorData};
use rand::{rngs::StdRng, SeedableRng};

use crate::common::*;
use bench_algorithms::detailed_balance::{db_terms, BackwardPolicy, LookAheadModel};
use bench_algorithms::reinforce::{advantages, reinforce_surrogate, ReinforceSettings};
use bench_algorithms::reward_gradient::differentiable_reward;
use bench_algorithms::util::to_f64;
use bench_envs::{
    normal_tensor, rollout, Denoiser, DiffusionEnv, DiffusionModel, LogProbReduction, Trajectory,
};

const BETA: f64 = 1.5;

fn flow(env: &LinearGaussian) -> LinearFlow<AB> {
    let rows = env.steps() + 1;
    LinearFlow {
        w: Table::new(pseudo_random(rows * D, 21), rows, &env.device),
        c: Param::from_tensor(Tensor::from_data(
            TensorData::new(pseudo_random(rows, 22), [rows]),
            &env.device,
        )),
    }
}

/// Trajectories of `policy`, sampled on the inference backend and lifted as constants, as
/// objectives get them.
fn sample(env: &LinearGaussian, policy: &Table<AB>, n: usize, seed: u64) -> Trajectory<AB> {
    rollout(
        env.infer(),
        Denoiser::Policy(&policy.valid()),
        vec![0; n],
        &mut StdRng::seed_from_u64(seed),
    )
    .lift()
}

#[test]
fn residual_db_telescopes_to_relative_trajectory_balance() {
    let env = LinearGaussian::new(8);
    let reward = LinearReward([0.7, -0.4]);
    let ctx = context(&env, &reward);
    let policy = env.random_policy(1, 0.3);
    let flow = flow(&env);
    let m = 5;
    let traj = sample(&env, &policy, m, 0);
    let rewards = ctx.score(traj.final_states().inner(), &traj.prompts);
    let t = db_terms(
        &ctx,
        &env,
        &policy,
        &flow,
        &traj,
        &rewards,
        BETA,
        BackwardPolicy::Pretrained,
        LookAheadModel::Current,
    );
    let residuals = to_f64(t.residual());

    // Eq. 49: Σ_t log p_θ/p_base = β·r(x₀) − log F̃(x_T), F̃(x_T) = F_φ(x_T) + β·r(x̂₀(x_T)).
    let steps = env.steps();
    let mut log_ratio = vec![0.0; m];
    for k in 0..steps {
        let ks = vec![k; m];
        let lp = |net| {
            to_f64(
                env.transition(net, traj.states[k].clone(), &ks, &traj.prompts)
                    .log_prob(traj.states[k + 1].clone(), LogProbReduction::Sum),
            )
        };
        let (pf, pb) = (lp(Denoiser::Policy(&policy)), lp(Denoiser::Base));
        for i in 0..m {
            log_ratio[i] += pf[i] - pb[i];
        }
    }
    let x_start = traj.states[0].clone();
    let eps = env.eps_unguided(
        Denoiser::Policy(&policy),
        x_start.clone(),
        &vec![0; m],
        Some(&traj.prompts),
    );
    let x0_hat = env.scheduler.predict_x0(x_start.clone(), eps, &vec![0; m]);
    let look = ctx.score(x0_hat.inner(), &traj.prompts);
    let flow_start = to_f64(env.state_value(&flow, x_start, &vec![0; m], &traj.prompts));
    for i in 0..m {
        let telescoped: f64 = (0..steps).map(|k| residuals[k * m + i]).sum();
        let balance = log_ratio[i] + flow_start[i] + BETA * look[i] - BETA * rewards[i];
        assert!(
            (telescoped - balance).abs() <= 1e-3 * balance.abs().max(1.0),
            "trajectory {i}: Σδ = {telescoped}, relative TB = {balance}"
        );
    }
}

/// ⟨∇_θ loss, v⟩ for the policy table.
fn projected(policy: &Table<AB>, loss: Tensor<AB, 1>, v: &[f32]) -> f64 {
    dot(&table_grad(policy, loss), v)
}

#[test]
fn dag_kl_gradient_is_the_kl_gradient_and_half_of_dag_db_on_policy() {
    let env = LinearGaussian::new(6);
    let reward = LinearReward([0.7, -0.4]);
    let ctx = context(&env, &reward);
    let policy = env.random_policy(3, 2.0);
    let frozen = burn::module::Module::no_grad(policy.clone());
    let flow = flow(&env);
    // Projected on the first two steps' offsets: later steps have σ_t → 0, and the variance
    // of δ·∇log p_θ ∝ 1/σ_t would drown any comparison at a testable sample size.
    let mut v = pseudo_random(env.steps() * D, 4);
    v[2 * D..].iter_mut().for_each(|x| *x = 0.0);
    let settings = ReinforceSettings {
        clip_range: 1e9,
        adv_clip_max: 1e9,
        kl_coef: 1.0,
        normalize: false,
        baseline: true,
    };
    let (batches, m) = (120, 64);
    let t_max = env.steps();
    let (mut reinforce, mut pathwise) = (vec![], vec![]);
    for b in 0..batches {
        let traj = sample(&env, &policy, m, 100 + b as u64);
        let rewards = ctx.score(traj.final_states().inner(), &traj.prompts);
        let terms = || {
            db_terms(
                &ctx,
                &env,
                &policy,
                &flow,
                &traj,
                &rewards,
                BETA,
                BackwardPolicy::Noising,
                LookAheadModel::Current,
            )
        };
        // DAG-KL's surrogate on its own samples, and DAG-DB's loss on the same ones.
        let surrogate = |settings: &ReinforceSettings| {
            let t = terms();
            let residuals = [to_f64(t.residual().detach())];
            let advantages = advantages(&residuals, residuals[0].len() / m, settings).remove(0);
            let kl = reinforce_surrogate(
                t.log_pf.clone(),
                t.log_pf_old.clone(),
                &advantages,
                settings,
            );
            projected(&policy, kl, &v)
        };
        let raw = surrogate(&ReinforceSettings {
            baseline: false,
            ..settings.clone()
        });
        let g_db = projected(&policy, terms().residual().powi_scalar(2).mean(), &v);
        assert!(
            (g_db / 2.0 - raw).abs() <= 1e-3 * raw.abs().max(1e-3),
            "per sample, ∇δ²/2 = δ·∇log p: {} vs {raw}",
            g_db / 2.0
        );
        // The estimate compared in expectation uses the leave-one-out baseline, which leaves
        // the expectation alone and removes most of the variance.
        reinforce.push(surrogate(&settings));

        // The KL itself, differentiated through reparameterised samples x' = μ_θ + σz.
        let s = traj.stack(&(0..t_max).collect::<Vec<_>>());
        let gauss = env.transition(
            Denoiser::Policy(&policy),
            s.x_t.clone(),
            &s.steps,
            &s.prompts,
        );
        let mut rng = StdRng::seed_from_u64(1000 + b as u64);
        let z = normal_tensor::<AB>(s.steps.len(), D, &mut rng, &env.device);
        let x_next = gauss.sample(z);
        let log_pf = gauss.log_prob(x_next.clone(), LogProbReduction::Sum);
        let log_q = env
            .scheduler
            .noising_kernel(x_next.clone(), &s.steps)
            .log_prob(s.x_t.clone(), LogProbReduction::Sum);
        let last: Vec<bool> = s.steps.iter().map(|&k| k + 1 == t_max).collect();
        let next_steps: Vec<usize> = s.steps.iter().map(|&k| (k + 1).min(t_max - 1)).collect();
        let eps = env.eps_unguided(
            Denoiser::Policy(&frozen),
            x_next.clone(),
            &next_steps,
            Some(&s.prompts),
        );
        let ahead = differentiable_reward(
            ctx.env,
            gradient_of(&reward),
            env.scheduler.predict_x0(x_next.clone(), eps, &next_steps),
            &s.prompts,
        );
        let at_end =
            differentiable_reward(ctx.env, gradient_of(&reward), x_next.clone(), &s.prompts);
        let mask = |on: bool| {
            Tensor::<AB, 1>::from_data(
                TensorData::new(
                    last.iter()
                        .map(|&l| if l == on { 1.0f32 } else { 0.0 })
                        .collect::<Vec<_>>(),
                    [last.len()],
                ),
                &env.device,
            )
        };
        let states_next: Vec<usize> = s.steps.iter().map(|k| k + 1).collect();
        let log_f_next = env.state_value(&flow, x_next, &states_next, &s.prompts) * mask(false)
            + (ahead * mask(false) + at_end * mask(true)).mul_scalar(BETA);
        let kl_estimate = (log_pf - log_f_next - log_q).mean();
        pathwise.push(projected(&policy, kl_estimate, &v));
    }
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    let se = |x: &[f64]| {
        let m = mean(x);
        (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64 / x.len() as f64)
            .sqrt()
    };
    let diff: Vec<f64> = reinforce
        .iter()
        .zip(&pathwise)
        .map(|(a, b)| a - b)
        .collect();
    let (r, p) = (mean(&reinforce), mean(&pathwise));
    // The REINFORCE and pathwise estimates agree within 4 standard errors of their difference,
    // and the gradient is far from zero, so a wrong sign or scale could not pass. Measured:
    // 0.097 ± 0.007 against 0.1044 ± 0.0013.
    assert!(
        mean(&diff).abs() < 4.0 * se(&diff),
        "E[δ∇log p] = {r} vs pathwise ∇KL = {p} (SE of the difference {})",
        se(&diff)
    );
    assert!(
        p.abs() > 8.0 * se(&diff),
        "the gradient {p} is not resolved (SE {})",
        se(&diff)
    );
}
