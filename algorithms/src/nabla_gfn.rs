//! ∇-GFlowNet with residual ∇-DB (Liu et al., Eqs. 12–19, Appendices A and G): detailed
//! balance on *scores*, for the residual policy p_θ/p_base^η towards p_base·R^β.
//!
//! For a transition x_t → x_{t+1} (paper's indexing: t counts denoising steps):
//! - forward (Eq. 16), trains θ and g_φ:
//!   ‖∇_{x_{t+1}} log p_θ − η∇_{x_{t+1}} log p_base − [βγ_{t+1}∇r(x̂₀_θ(x_{t+1})) + g_φ(x_{t+1})]‖²,
//!   with the score −(x_{t+1} − μ(x_t))/σ_t² in closed form (it is differentiable in θ;
//!   burn's autodiff has no second order), and at the last transition the target
//!   β∇r(x_{t+1}) (g_φ dropped, γ = 1);
//! - reverse (Eq. 17), weight w_B: ‖∇_{x_t} log p_θ − η∇_{x_t} log p_base + βγ_t∇r(x̂₀_θ(x_t)) +
//!   g_φ(x_t)‖², the scores by autodiff with respect to x_t, so as in the released code it
//!   trains g_φ only;
//! - terminal (Eq. 18): ‖g_φ(x_T)‖²;
//! - output regularisation λ·mean(ε_θ − ε_old)² towards the model that sampled the epoch.
//!
//! Scores are true log-density gradients whatever the sampler's log-prob reduction, as in the
//! released code; losses are means over rows and dimensions.

use bench_core::validate::{self, Invalid, Validate};
use std::path::Path;

use burn::module::{AutodiffModule, Module};
use burn::tensor::{backend::AutodiffBackend, backend::Backend, Tensor};
use rand::{rngs::StdRng, Rng};
use serde::{Deserialize, Serialize};

use bench_core::stats::{mean, population_std as std};
use bench_envs::{Denoiser, DiffusionEnv, DiffusionModel, Inner, LogProbReduction, Stacked};
use bench_rewards::toy::TargetKind;
use bench_rewards::DifferentiableReward;

use crate::algorithm::{Algorithm, Context, Scalars, Sharding, TargetSpec};
use crate::detailed_balance::output_regulariser;
use crate::optim::{OptimConfig, Trained};
use crate::registry::Objective;
use crate::reward_gradient::{
    gradient_wrt_input, predicted_reward_gradient, reward_gradient, SmoothingNoise,
};
use crate::util::{minibatches, scalar, scatter_rows, select_rows};

/// The forward-looking scale γ as a function of the state's ᾱ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LookAhead {
    /// γ = ᾱ (the paper's choice).
    #[default]
    AlphaBar,
    /// γ = √ᾱ (an option of the released code).
    Sqrt,
}

impl LookAhead {
    pub fn gamma(self, alpha_bar: f64) -> f64 {
        match self {
            Self::AlphaBar => alpha_bar,
            Self::Sqrt => alpha_bar.sqrt(),
        }
    }
}

/// ∇-GFlowNet's hyper-parameters; defaults are the released code's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NablaGfnConfig {
    /// Trajectories sampled per epoch (64).
    pub sample_batch: usize,
    /// Trajectories per optimizer step (32).
    pub train_batch: usize,
    /// Strata of the stratified timestep subsampling: one transition from each of `strata`
    /// equal intervals of the steps before the last, plus the last one always (5 of 50 steps:
    /// 6 transitions). 0 trains every transition.
    pub strata: usize,
    /// Reward exponent β on true log-densities (1e3 default, 1e4 aesthetic).
    pub beta: f64,
    pub w_f: f64,
    /// Weight of the reverse loss; 0 and 1 are the paper's settings.
    pub w_b: f64,
    pub look_ahead: LookAhead,
    /// Prior strength η (Appendix G): the target becomes R^β·p_base^η.
    pub prior_strength: f64,
    /// λ of the output regularisation (1e3; 2e3 aesthetic, 1e2 HPSv2 in the configs).
    pub reg_coef: f64,
    /// Std of the Gaussian perturbation of x̂₀ that smooths reward gradients (2e-3), and the
    /// draws that average it (3).
    pub reward_smoothing: f64,
    pub smoothing_samples: usize,
    /// The policy's optimizer (lr 1e-3).
    pub optim: OptimConfig,
    /// g_φ's optimizer (lr 1e-3, weight decay 1e-2).
    pub field_optim: OptimConfig,
}

impl Default for NablaGfnConfig {
    fn default() -> Self {
        Self {
            sample_batch: 64,
            train_batch: 32,
            strata: 5,
            beta: 1e3,
            w_f: 1.0,
            w_b: 1.0,
            look_ahead: LookAhead::AlphaBar,
            prior_strength: 1.0,
            reg_coef: 1e3,
            reward_smoothing: 2e-3,
            smoothing_samples: 3,
            optim: OptimConfig {
                lr: 1e-3,
                ..OptimConfig::default()
            },
            field_optim: OptimConfig {
                lr: 1e-3,
                weight_decay: 1e-2,
                ..OptimConfig::default()
            },
        }
    }
}

impl Validate for NablaGfnConfig {
    fn validate(&self) -> Result<(), Invalid> {
        validate::at_least("sample_batch", self.sample_batch, 1)?;
        validate::count_within("train_batch", self.train_batch, 1, self.sample_batch)?;
        validate::non_negative("beta", self.beta)?;
        validate::non_negative("w_f", self.w_f)?;
        validate::non_negative("w_b", self.w_b)?;
        if !(self.prior_strength > 0.0 && self.prior_strength <= 1.0) {
            return Err(Invalid::new(
                "prior_strength",
                format!("= {} must be in (0, 1]", self.prior_strength),
            ));
        }
        validate::non_negative("reg_coef", self.reg_coef)?;
        validate::non_negative("reward_smoothing", self.reward_smoothing)?;
        validate::at_least("smoothing_samples", self.smoothing_samples, 1)?;
        self.optim.validate().map_err(|e| e.within("optim"))?;
        self.field_optim
            .validate()
            .map_err(|e| e.within("field_optim"))
    }
}

/// Stratified steps: one uniformly from each of `strata` equal intervals of `0..steps − 1`,
/// then the last step `steps − 1`; every step when `strata` is 0 or covers them all.
pub fn stratified_steps(steps: usize, strata: usize, rng: &mut impl Rng) -> Vec<usize> {
    let body = steps - 1;
    if strata == 0 || strata >= body {
        return (0..steps).collect();
    }
    let mut picked: Vec<usize> = (0..strata)
        .map(|s| {
            let (lo, hi) = (s * body / strata, (s + 1) * body / strata);
            rng.random_range(lo..hi)
        })
        .collect();
    picked.push(steps - 1);
    picked
}

/// The constants of a batch of transitions: everything the losses use without a gradient.
pub struct NablaBatch<B: AutodiffBackend> {
    pub rows: Stacked<B>,
    /// Final states of the batch's trajectories and their prompts (the terminal loss).
    pub finals: Tensor<B, 2>,
    pub final_prompts: Vec<usize>,
    /// μ_base(x_t) and σ_t of each row.
    pub mean_base: Tensor<B, 2>,
    pub std: Tensor<B, 2>,
    /// The forward target without g_φ: βγ∇r(x̂₀(x_{t+1})), or β∇r(x₀) at the last step.
    pub look_next: Tensor<B, 2>,
    /// 1 where g_φ(x_{t+1}) enters the forward target, 0 at the last step.
    pub keep_next: Tensor<B, 2>,
    /// ∇_{x_t} log p_θ − η∇_{x_t} log p_base + βγ∇r(x̂₀(x_t)): the reverse residual without g_φ.
    pub reverse_const: Tensor<B, 2>,
}

/// The four losses, each with its graph.
pub struct NablaLosses<B: AutodiffBackend> {
    pub forward: Tensor<B, 1>,
    pub reverse: Tensor<B, 1>,
    pub terminal: Tensor<B, 1>,
    pub reg: Tensor<B, 1>,
}

impl<B: AutodiffBackend> NablaLosses<B> {
    pub fn total(&self, c: &NablaGfnConfig) -> Tensor<B, 1> {
        self.forward.clone().mul_scalar(c.w_f)
            + self.reverse.clone().mul_scalar(c.w_b)
            + self.terminal.clone()
            + self.reg.clone().mul_scalar(c.reg_coef)
    }
}

/// A per-row column `[N, 1]` of host values.
fn column<B: AutodiffBackend>(values: &[f64], device: &B::Device) -> Tensor<B, 2> {
    crate::util::vector::<B>(values, device).unsqueeze_dim(1)
}

/// The smoothing noise of one minibatch's transitions, drawn on the host for all of them in
/// the order one device draws it (the look-ahead at x_{t+1} first, for the transitions before
/// the last step, then at x_t), so that a split of the minibatch over devices uses the same.
pub struct NablaNoise {
    next: SmoothingNoise,
    here: SmoothingNoise,
}

impl NablaNoise {
    /// For transitions at steps `steps` (stacked as [`picks`] stacks them) of a `t_max`-step
    /// sampler over `dims`-dimensional states.
    pub fn draw(
        steps: &[usize],
        t_max: usize,
        dims: usize,
        c: &NablaGfnConfig,
        rng: &mut StdRng,
    ) -> Self {
        let (sd, n) = (c.reward_smoothing, c.smoothing_samples);
        let before_last: Vec<bool> = steps.iter().map(|&k| k + 1 < t_max).collect();
        let next = SmoothingNoise::draw(&before_last, dims, sd, n, rng);
        let here = SmoothingNoise::draw(&vec![true; steps.len()], dims, sd, n, rng);
        Self { next, here }
    }

    /// The noise of transitions `rows` (indices into the drawn ones) on `device`.
    pub fn rows<B: Backend>(&self, rows: &[usize], device: &B::Device) -> TransitionNoise<B> {
        TransitionNoise {
            next: self.next.rows(rows, device),
            here: self.here.rows(rows, device),
        }
    }
}

/// [`NablaNoise`] of a batch of transitions, on its device: one `[rows, dims]` tensor per
/// draw at x_{t+1} and at x_t (none without smoothing).
pub struct TransitionNoise<B: Backend> {
    pub next: Vec<Tensor<B, 2>>,
    pub here: Vec<Tensor<B, 2>>,
}

/// Computes the constants of `rows` (transitions of trajectories whose finals are given) on
/// `env`'s device, with `current` the frozen policy being trained (on the autodiff backend:
/// the look-ahead and reverse terms are gradients with respect to the states through it),
/// `reward` the reward's differentiable side there, and `noise` the rows' smoothing noise.
#[allow(clippy::too_many_arguments)]
pub fn prepare<B: AutodiffBackend, E: DiffusionEnv<B>>(
    env: &E,
    reward: &dyn DifferentiableReward<B>,
    c: &NablaGfnConfig,
    current: &E::Policy,
    rows: Stacked<B>,
    finals: Tensor<B, 2>,
    final_prompts: Vec<usize>,
    noise: TransitionNoise<B>,
) -> NablaBatch<B> {
    let train = env.train();
    let device = env.device().clone();
    let sched = env.scheduler();
    let schedule = sched.schedule();
    let t_max = sched.num_steps();
    let steps = rows.steps.clone();
    let prompts = rows.prompts.clone();
    let base = env
        .infer()
        .transition(Denoiser::Base, rows.x_t.clone().inner(), &steps, &prompts);
    let (mean_base, std) = (Tensor::from_inner(base.mean), Tensor::from_inner(base.std));

    // Forward-looking terms at x_{t+1}: through x̂₀ before the last step, r itself at x₀;
    // each row computes only its own.
    let (ends, mids): (Vec<usize>, Vec<usize>) =
        (0..steps.len()).partition(|&j| steps[j] + 1 == t_max);
    let mid_steps: Vec<usize> = mids.iter().map(|&j| steps[j] + 1).collect();
    let pick = |idx: &[usize]| idx.iter().map(|&j| prompts[j]).collect::<Vec<_>>();
    let mut parts = Vec::new();
    if !mids.is_empty() {
        let ahead = predicted_reward_gradient(
            env,
            reward,
            current,
            select_rows(&rows.x_next, &mids),
            &mid_steps,
            &pick(&mids),
            noise.next.iter().map(|z| select_rows(z, &mids)).collect(),
        );
        let scale: Vec<f64> = mid_steps
            .iter()
            .map(|&k| c.beta * c.look_ahead.gamma(schedule.alpha_bar(k)))
            .collect();
        parts.push((mids.clone(), ahead * column::<B>(&scale, &device)));
    }
    if !ends.is_empty() {
        let at_end = reward_gradient(env, reward, select_rows(&rows.x_next, &ends), &pick(&ends));
        parts.push((ends.clone(), at_end.mul_scalar(c.beta)));
    }
    let look_next = scatter_rows(rows.x_next.dims(), parts);
    let keep: Vec<f64> = steps
        .iter()
        .map(|&k| if k + 1 == t_max { 0.0 } else { 1.0 })
        .collect();

    // Reverse: scores with respect to x_t by autodiff, and the look-ahead at x_t.
    let score_x_t = |net: Denoiser<'_, E::Policy>| {
        gradient_wrt_input(rows.x_t.clone(), |x| {
            train
                .transition(net, x, &steps, &prompts)
                .log_prob(rows.x_next.clone(), LogProbReduction::Sum)
        })
    };
    let reverse_score = score_x_t(Denoiser::Policy(current))
        - score_x_t(Denoiser::Base).mul_scalar(c.prior_strength);
    let here = predicted_reward_gradient(
        env,
        reward,
        current,
        rows.x_t.clone(),
        &steps,
        &prompts,
        noise.here,
    );
    let scale_here: Vec<f64> = steps
        .iter()
        .map(|&k| c.beta * c.look_ahead.gamma(schedule.alpha_bar(k)))
        .collect();
    NablaBatch {
        rows,
        finals,
        final_prompts,
        mean_base,
        std,
        look_next,
        keep_next: column::<B>(&keep, &device),
        reverse_const: reverse_score + here * column::<B>(&scale_here, &device),
    }
}

/// The losses of `policy` and `field` on a prepared batch; `old` is the sampling model.
pub fn losses<B: AutodiffBackend, E: DiffusionEnv<B>>(
    env: &E,
    c: &NablaGfnConfig,
    policy: &E::Policy,
    field: &E::FieldNet,
    old: &Inner<B, E::Policy>,
    b: &NablaBatch<B>,
) -> NablaLosses<B> {
    let r = &b.rows;
    let train = env.train();
    let t_max = env.scheduler().num_steps();
    let eps = train.eps(
        Denoiser::Policy(policy),
        r.x_t.clone(),
        &r.steps,
        &r.prompts,
    );
    let mean = env
        .scheduler()
        .transition(r.x_t.clone(), eps.clone(), &r.steps)
        .mean;
    let var = b.std.clone().powi_scalar(2);
    // s_θ − η·s_base = [(μ_θ − μ_base) + (η − 1)(x_{t+1} − μ_base)]/σ², written so that η = 1
    // does not subtract two nearly equal scores.
    let residual_score = (mean - b.mean_base.clone()
        + (r.x_next.clone() - b.mean_base.clone()).mul_scalar(c.prior_strength - 1.0))
        / var;
    let next_states: Vec<usize> = r.steps.iter().map(|k| k + 1).collect();
    let g_next =
        train.field(field, r.x_next.clone(), &next_states, &r.prompts) * b.keep_next.clone();
    let forward = (residual_score - b.look_next.clone() - g_next)
        .powi_scalar(2)
        .mean();
    let g_here = train.field(field, r.x_t.clone(), &r.steps, &r.prompts);
    let reverse = (b.reverse_const.clone() + g_here).powi_scalar(2).mean();
    let finals = vec![t_max; b.final_prompts.len()];
    let terminal = train
        .field(field, b.finals.clone(), &finals, &b.final_prompts)
        .powi_scalar(2)
        .mean();
    let reg = output_regulariser(env, old, eps, r.x_t.clone(), &r.steps, &r.prompts);
    NablaLosses {
        forward,
        reverse,
        terminal,
        reg,
    }
}

/// A ∇-GFlowNet run: the policy and g_φ with their optimizers.
pub struct NablaGfnAlgorithm<B: AutodiffBackend, E: DiffusionEnv<B>> {
    config: NablaGfnConfig,
    policy: Trained<B, E::Policy>,
    field: Trained<B, E::FieldNet>,
}

/// ∇-GFlowNet's registry entry.
pub struct NablaGfn;

impl Objective for NablaGfn {
    type Params = NablaGfnConfig;

    fn build<B: AutodiffBackend, E: DiffusionEnv<B> + 'static>(
        config: &NablaGfnConfig,
        env: &E,
        rng: &mut StdRng,
    ) -> Result<Box<dyn Algorithm<B, E>>, String> {
        if config.sample_batch == 0 || config.train_batch == 0 {
            return Err("sample_batch and train_batch must be positive".into());
        }
        crate::util::check_trajectories(env, config.sample_batch, "sample_batch")?;
        if !(config.prior_strength > 0.0 && config.prior_strength <= 1.0) {
            return Err(format!(
                "prior_strength = {} must be in (0, 1]",
                config.prior_strength
            ));
        }
        Ok(Box::new(NablaGfnAlgorithm::<B, E> {
            policy: Trained::new(env.init_policy(rng), config.optim.clone()),
            field: Trained::new(env.init_field_net(rng), config.field_optim.clone()),
            config: config.clone(),
        }))
    }
}

/// [`stratified_steps`] for each of `rows` trajectories of `steps` steps, in row order.
pub fn stratified_rows(
    rows: usize,
    steps: usize,
    strata: usize,
    rng: &mut impl Rng,
) -> Vec<Vec<usize>> {
    (0..rows)
        .map(|_| stratified_steps(steps, strata, rng))
        .collect()
}

/// `(row, step)` pairs of every row's steps, the rows' first steps first (so that each
/// position is a block of rows).
pub fn position_major(per_row: &[Vec<usize>]) -> Vec<(usize, usize)> {
    let positions = per_row.first().map_or(0, Vec::len);
    (0..positions)
        .flat_map(|p| per_row.iter().enumerate().map(move |(i, s)| (i, s[p])))
        .collect()
}

impl<B: AutodiffBackend, E: DiffusionEnv<B>> Algorithm<B, E> for NablaGfnAlgorithm<B, E> {
    fn train_epoch(&mut self, ctx: &Context<'_, B, E>) -> Result<Scalars, String> {
        let c = self.config.clone();
        let reward_on = ctx.differentiable_rewards("nabla_gfn")?;
        let mut rng = ctx.rng("nabla_gfn");
        let old = self.policy.module.valid();
        let (traj, rewards) = ctx.sample(&self.policy.module, c.sample_batch, &mut rng);
        let (t_max, dims) = (traj.num_steps(), ctx.env.dims());
        let mut logs: [Vec<f64>; 6] = Default::default();
        for rows in minibatches(traj.batch_size(), c.train_batch, &mut rng) {
            // Everything random is drawn for the whole minibatch, then split by trajectories
            // over the devices: each device trains on its trajectories' transitions.
            let per_row = stratified_rows(rows.len(), t_max, c.strata, &mut rng);
            let whole = position_major(&per_row);
            let steps: Vec<usize> = whole.iter().map(|&(_, k)| k).collect();
            let noise = NablaNoise::draw(&steps, t_max, dims, &c, &mut rng);
            let current = self.policy.module.clone().no_grad();
            let (policy, field) = (&self.policy.module, &self.field.module);
            // Every trajectory contributes as many transitions, so a shard's share of the
            // trajectories weighs its row means of transitions and of finals alike.
            let mut step = ctx.backward_sharded(&rows, |shard| {
                let env = shard.env;
                let sub = shard.rows_of(&traj);
                // This shard's transitions: their indices among the minibatch's (for the
                // noise) and their picks among its own trajectories, in the same order.
                let (within, local): (Vec<usize>, Vec<(usize, usize)>) = whole
                    .iter()
                    .enumerate()
                    .filter(|(_, (i, _))| shard.positions.contains(i))
                    .map(|(j, &(i, k))| (j, (i - shard.positions.start, k)))
                    .unzip();
                let batch = prepare(
                    env,
                    reward_on[shard.device],
                    &c,
                    &shard.local(&current),
                    sub.gather(&local),
                    sub.final_states(),
                    sub.prompts.clone(),
                    noise.rows(&within, env.device()),
                );
                let (policy, field) = (shard.local(policy), shard.local(field));
                let l = losses(env, &c, &policy, &field, &shard.local_inner(&old), &batch);
                let logged =
                    [&l.forward, &l.reverse, &l.terminal, &l.reg].map(|v| v.clone().detach());
                (l.total(&c), (logged, policy, field))
            });
            for (i, log) in logs.iter_mut().take(4).enumerate() {
                log.push(step.mean(|t| scalar(t.0[i].clone())));
            }
            let policies = step.parts.iter().map(|(_, t)| &t.1);
            logs[4].push(
                self.policy
                    .step_sharded(step.grads.iter_mut().zip(policies)),
            );
            let fields = step.parts.iter().map(|(_, t)| &t.2);
            logs[5].push(self.field.step_sharded(step.grads.iter_mut().zip(fields)));
        }
        Ok(vec![
            ("reward_mean".into(), mean(&rewards)),
            ("reward_std".into(), std(&rewards)),
            ("loss_forward".into(), mean(&logs[0])),
            ("loss_reverse".into(), mean(&logs[1])),
            ("loss_terminal".into(), mean(&logs[2])),
            ("reg".into(), mean(&logs[3])),
            ("grad_norm".into(), mean(&logs[4])),
            ("field_grad_norm".into(), mean(&logs[5])),
        ])
    }

    fn policy(&self) -> &E::Policy {
        &self.policy.module
    }

    fn needs_reward_gradient(&self) -> bool {
        true
    }

    fn data_parallel(&self) -> Sharding {
        Sharding::SamplingAndSteps
    }

    /// p_base·R^β exactly when η = 1; R^β·p_base^η has no closed form otherwise.
    fn target(&self, _env: &E) -> Option<TargetSpec> {
        (self.config.prior_strength == 1.0).then_some(TargetSpec {
            kind: TargetKind::Tilted,
            beta: self.config.beta,
        })
    }

    fn save(&self, dir: &Path) -> Result<(), String> {
        self.policy.save(dir, "policy")?;
        self.field.save(dir, "field")
    }

    fn load(&mut self, dir: &Path) -> Result<(), String> {
        self.policy.load(dir, "policy")?;
        self.field.load(dir, "field")
    }
}
