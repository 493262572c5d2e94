//! ReFL, DRaFT-K and DRaFT-LV differentiate the reward through sampling: their parameter
//! gradients must equal finite differences of their losses (same noise), and DRaFT-K with K
//! equal to every step must be full backpropagation through the sampler.

use rand::{rngs::StdRng, SeedableRng};

use crate::common::*;
use bench_algorithms::draft::Draft;
use bench_algorithms::draft_lv::DraftLv;
use bench_algorithms::refl::Refl;
use bench_algorithms::reward_backprop::{rows_loss, BackpropSettings, DifferentiableSampler};
use bench_algorithms::reward_gradient::differentiable_reward;
use bench_algorithms::util::uniform_prompts;
use bench_algorithms::Context;
use bench_envs::{normal_tensor, Denoiser, DiffusionModel};
use bench_envs::{EnvInfo, Inner};
use bench_rewards::DifferentiableReward;
use bench_rewards::{builtin_reward, Reward};
use burn::module::AutodiffModule;
use burn::tensor::Tensor;

fn settings(relu: bool) -> BackpropSettings {
    BackpropSettings {
        batch: 16,
        relu,
        ..BackpropSettings::default()
    }
}

/// One update's loss on one device, as training computes it: a batch of prompts drawn with
/// `rng`, then the sampler's samples of every row from the same generator.
fn backprop_loss(
    ctx: &Context<'_, AB, LinearGaussian>,
    reward: &dyn DifferentiableReward<AB>,
    sampler: &dyn DifferentiableSampler<AB, LinearGaussian>,
    live: &Table<AB>,
    frozen: &Inner<AB, Table<AB>>,
    s: &BackpropSettings,
    rng: &mut StdRng,
) -> (Tensor<AB, 1>, Vec<f64>) {
    let prompts = uniform_prompts(ctx.env.prompts().len(), s.batch, rng);
    let all = 0..prompts.len();
    rows_loss(
        ctx.env, reward, sampler, live, frozen, &prompts, all, s.relu, rng,
    )
}

/// The toy mixture reward: a log-density, so the gradients are far from linear.
fn mixture() -> Box<dyn Reward<AB>> {
    builtin_reward::<AB>("mixture", &Default::default()).unwrap()
}

/// Autodiff's directional derivative of `sampler`'s loss against central differences.
fn check_finite_differences(sampler: &dyn DifferentiableSampler<AB, LinearGaussian>, relu: bool) {
    let env = LinearGaussian::new(6);
    let reward = mixture();
    let ctx = context(&env, reward.as_ref());
    let rows = env.steps();
    let policy = env.random_policy(7, 0.5);
    let s = settings(relu);
    // The undifferentiated parts of sampling stay with the unperturbed policy.
    let loss = |p: &Table<AB>| {
        backprop_loss(
            &ctx,
            gradient_of(reward.as_ref()),
            sampler,
            p,
            &policy.valid(),
            &s,
            &mut StdRng::seed_from_u64(42),
        )
        .0
    };
    let v = pseudo_random(rows * D, 8);
    let analytic = dot(&table_grad(&policy, loss(&policy)), &v);
    let h = 1e-2;
    let f = |h: f32| loss(&shifted(&policy, &v, h, rows)).into_scalar() as f64;
    let numeric = (f(h) - f(-h)) / (2.0 * h as f64);
    assert!(
        analytic.abs() > 1e-3,
        "{}: the gradient must not vanish ({analytic})",
        sampler.name()
    );
    assert!(
        (numeric - analytic).abs() <= 1e-2 * analytic.abs(),
        "{}: finite differences {numeric} vs autodiff {analytic}",
        sampler.name()
    );
}

#[test]
fn refl_gradient_matches_finite_differences() {
    check_finite_differences(&Refl { stop_steps: (2, 5) }, false);
}

#[test]
fn draft_k_gradients_match_finite_differences() {
    for k in [1, 3, 6] {
        check_finite_differences(&Draft { k }, false);
    }
}

#[test]
fn draft_lv_gradient_matches_finite_differences() {
    check_finite_differences(&DraftLv { lv_samples: 2 }, false);
}

#[test]
fn relu_of_reward_cuts_the_gradient_of_negative_rewards() {
    // Mixture log-densities are negative away from its peaks: ReLU(r) = 0 gives no gradient.
    let env = LinearGaussian::new(6);
    let reward = mixture();
    let ctx = context(&env, reward.as_ref());
    let policy = env.policy(vec![3.0; env.steps() * D]);
    let (loss, rewards) = backprop_loss(
        &ctx,
        gradient_of(reward.as_ref()),
        &Draft { k: 1 },
        &policy,
        &policy.valid(),
        &settings(true),
        &mut StdRng::seed_from_u64(1),
    );
    assert!(rewards.iter().all(|&r| r < 0.0));
    assert!(table_grad(&policy, loss).iter().all(|&g| g == 0.0));
}

#[test]
fn draft_with_every_step_is_full_backpropagation() {
    let env = LinearGaussian::new(6);
    let reward = mixture();
    let ctx = context(&env, reward.as_ref());
    let steps = env.steps();
    let policy = env.policy(
        pseudo_random(steps * D, 9)
            .iter()
            .map(|v| 0.5 * v)
            .collect(),
    );
    let s = settings(false);
    let draft = |k| {
        let (loss, _) = backprop_loss(
            &ctx,
            gradient_of(reward.as_ref()),
            &Draft { k },
            &policy,
            &policy.valid(),
            &s,
            &mut StdRng::seed_from_u64(5),
        );
        table_grad(&policy, loss)
    };
    // Full backpropagation written out: the same noise, every transition differentiable.
    let mut rng = StdRng::seed_from_u64(5);
    let prompts = uniform_prompts(1, s.batch, &mut rng);
    let mut x = normal_tensor::<AB>(s.batch, D, &mut rng, &env.device);
    for k in 0..steps {
        x = env
            .transition(Denoiser::Policy(&policy), x, &vec![k; s.batch], &prompts)
            .sample(normal_tensor::<AB>(s.batch, D, &mut rng, &env.device));
    }
    let full = table_grad(
        &policy,
        differentiable_reward(ctx.env, gradient_of(reward.as_ref()), x, &prompts)
            .mean()
            .neg(),
    );
    let all = draft(steps);
    for (a, b) in all.iter().zip(&full) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1e-3), "{a} vs {b}");
    }
    // Truncation matters: DRaFT-1 reaches only the last step's offsets.
    let one = draft(1);
    assert!(one[..(steps - 1) * D].iter().all(|&g| g == 0.0));
    assert!(full[..(steps - 1) * D].iter().any(|&g| g.abs() > 1e-4));
}
