//! The forward-looking detailed-balance terms shared by DAG-DB, DAG-KL and residual DB.
//!
//! For a transition x_t → x_{t−1} (trajectory positions k → k+1):
//!
//! log F(x_t) = F_φ(x_t, t, c) + β·r(x̂₀(x_t)),   log F(x₀) = β·r(x₀),
//! δ = log F(x_t) + log p_θ(x_{t−1}|x_t) − log F(x_{t−1}) − log p_B(x_t|x_{t−1}),
//!
//! with p_B the noising kernel q (target ∝ exp(β·r)) or the pretrained denoiser (the residual
//! form, target ∝ p_base·exp(β·r)). x̂₀ comes from the model being trained, frozen, without
//! guidance (a constant), as in the reference code.

use bench_core::validate::{self, Invalid, Validate};
use std::path::Path;

use burn::module::AutodiffModule;
use burn::tensor::{backend::AutodiffBackend, Tensor};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use bench_core::stats::{mean, population_std as std};
use bench_envs::{Denoiser, DiffusionEnv, DiffusionModel, Inner, Stacked, Trajectory};
use bench_rewards::toy::TargetKind;

use crate::algorithm::{Algorithm, Context, Scalars, Sharding, TargetSpec};
use crate::data_parallel::Shard;
use crate::optim::{OptimConfig, Trained};
use crate::reinforce::ReinforceSettings;
use crate::residual_bands::ResidualBands;
use crate::sub_trajectory::{balance_loss, Balance, TailWeight};
use crate::util::{minibatches, scalar, select_rows, to_f64, vector};

/// What stands in the backward direction of the balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackwardPolicy {
    /// The fixed noising kernel q(x_t | x_{t−1}): target ∝ exp(β·r).
    Noising,
    /// The pretrained denoiser p_base(x_{t−1} | x_t): target ∝ p_base·exp(β·r).
    Pretrained,
}

/// Which model's x̂₀ the forward-looking term r(x̂₀(x_t)) uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LookAheadModel {
    /// The model being trained, frozen for the step (the papers' code).
    #[default]
    Current,
    /// The pretrained model: a fixed baseline. For the residual target p_base·R^β the exact
    /// residual flow is E_base[R^β(x₀) | x_t], of which β·r(x̂₀_base(x_t)) is the first-order
    /// approximation, and it does not move while the policy learns.
    Base,
}

/// Every term of δ for a minibatch of transitions, rows stacked step-major (`k·m + i`).
pub struct DbTerms<B: AutodiffBackend> {
    /// log F(x_t), with the flow network's graph (a constant with exact flows).
    pub log_f_t: Tensor<B, 1>,
    /// log F(x_{t−1}), with the flow network's graph (the reward alone at the last step; a
    /// constant with exact flows).
    pub log_f_next: Tensor<B, 1>,
    /// log p_θ(x_{t−1}|x_t) under the current policy, with its graph.
    pub log_pf: Tensor<B, 1>,
    /// log p_θ_old(x_{t−1}|x_t): the sampling policy's, recorded at rollout.
    pub log_pf_old: Tensor<B, 1>,
    /// log p_B, a constant.
    pub log_pb: Tensor<B, 1>,
    /// The current policy's guided ε at x_t, with its graph (for output regularisation).
    pub eps: Tensor<B, 2>,
    /// x_t, steps and prompts of the rows.
    pub x_t: Tensor<B, 2>,
    pub steps: Vec<usize>,
    pub prompts: Vec<usize>,
}

impl<B: AutodiffBackend> DbTerms<B> {
    /// δ per transition.
    pub fn residual(&self) -> Tensor<B, 1> {
        self.log_f_t.clone() + self.log_pf.clone() - self.log_f_next.clone() - self.log_pb.clone()
    }
}

/// r(x̂₀(x)) for states `x` at inference steps `steps`, from `model` (frozen) without
/// guidance, on the inference backend of `env` (a data-parallel shard's device; the reward
/// scores on the main one): the forward-looking term, a constant.
pub fn looking_ahead<B: AutodiffBackend, E: DiffusionEnv<B>>(
    ctx: &Context<'_, B, E>,
    env: &E,
    model: Denoiser<'_, Inner<B, E::Policy>>,
    x: Tensor<B::InnerBackend, 2>,
    steps: &[usize],
    prompts: &[usize],
) -> Vec<f64> {
    let infer = env.infer();
    let eps = infer.eps_unguided(model, x.clone(), steps, Some(prompts));
    let x0 = infer.scheduler().predict_x0(x, eps, steps);
    if std::ptr::eq(env, ctx.env) {
        ctx.score(x0, prompts)
    } else {
        ctx.score(x0.to_device(ctx.env.infer().device()), prompts)
    }
}

/// The terms of every transition of `sub` (its rows' final rewards are `rewards`) in `env`
/// (the run's, or a data-parallel shard's copy on its device): the constants on the inference
/// backend, the policy's and the flow's terms with their graphs.
#[allow(clippy::too_many_arguments)]
pub fn db_terms<B: AutodiffBackend, E: DiffusionEnv<B>>(
    ctx: &Context<'_, B, E>,
    env: &E,
    policy: &E::Policy,
    flow: &E::StateNet,
    sub: &Trajectory<B>,
    rewards: &[f64],
    beta: f64,
    backward: BackwardPolicy,
    look_ahead: LookAheadModel,
) -> DbTerms<B> {
    let (train, infer) = (env.train(), env.infer());
    let reduction = env.scheduler().reduction();
    let steps: Vec<usize> = (0..sub.num_steps()).collect();
    let s = sub.stack(&steps);
    let (x_t, x_next) = (s.x_t.clone().inner(), s.x_next.clone().inner());
    let log_pb = match backward {
        BackwardPolicy::Pretrained => infer
            .transition(Denoiser::Base, x_t, &s.steps, &s.prompts)
            .log_prob(x_next, reduction),
        BackwardPolicy::Noising => env
            .scheduler()
            .noising_kernel(x_next, &s.steps)
            .log_prob(x_t, reduction),
    };

    let (log_f_t, log_f_next) = match exact_flows(env, &s, rewards, beta) {
        Some(flows) => flows,
        None => learned_flows(ctx, env, policy, flow, &s, rewards, beta, look_ahead),
    };

    let eps = train.eps(
        Denoiser::Policy(policy),
        s.x_t.clone(),
        &s.steps,
        &s.prompts,
    );
    let log_pf = env
        .scheduler()
        .transition(s.x_t.clone(), eps.clone(), &s.steps)
        .log_prob(s.x_next.clone(), reduction);
    DbTerms {
        log_f_t,
        log_f_next,
        log_pf,
        log_pf_old: sub.stacked_log_probs(&steps),
        log_pb: Tensor::from_inner(log_pb),
        eps,
        x_t: s.x_t,
        steps: s.steps,
        prompts: s.prompts,
    }
}

/// log F(x_t) and log F(x_{t−1}) of stacked transitions `s` from the flow network plus the
/// forward-looking term, with the network's graph; at the last step log F(x₀) = β·r(x₀).
#[allow(clippy::too_many_arguments)]
fn learned_flows<B: AutodiffBackend, E: DiffusionEnv<B>>(
    ctx: &Context<'_, B, E>,
    env: &E,
    policy: &E::Policy,
    flow: &E::StateNet,
    s: &Stacked<B>,
    rewards: &[f64],
    beta: f64,
    look_ahead: LookAheadModel,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let train = env.train();
    let device = env.device().clone();
    let m = rewards.len();
    let t_max = env.scheduler().num_steps();
    let current = policy.valid();
    let model = match look_ahead {
        LookAheadModel::Current => Denoiser::Policy(&current),
        LookAheadModel::Base => Denoiser::Base,
    };
    let fl_t: Vec<f64> =
        looking_ahead(ctx, env, model, s.x_t.clone().inner(), &s.steps, &s.prompts)
            .into_iter()
            .map(|r| beta * r)
            .collect();
    // The next state's term; at the last step x_{t−1} = x₀ and log F(x₀) = β·r(x₀), so only
    // the other rows look ahead.
    let last: Vec<bool> = s.steps.iter().map(|&k| k + 1 == t_max).collect();
    let mids: Vec<usize> = (0..last.len()).filter(|&j| !last[j]).collect();
    let ahead = if mids.is_empty() {
        vec![]
    } else {
        looking_ahead(
            ctx,
            env,
            model,
            select_rows(&s.x_next, &mids).inner(),
            &mids.iter().map(|&j| s.steps[j] + 1).collect::<Vec<_>>(),
            &mids.iter().map(|&j| s.prompts[j]).collect::<Vec<_>>(),
        )
    };
    let mut fl_next: Vec<f64> = (0..last.len()).map(|j| beta * rewards[j % m]).collect();
    for (&j, r) in mids.iter().zip(ahead) {
        fl_next[j] = beta * r;
    }
    let keep_next: Vec<f64> = last.iter().map(|&l| if l { 0.0 } else { 1.0 }).collect();
    let states_next: Vec<usize> = s.steps.iter().map(|k| k + 1).collect();
    let log_f_t =
        train.state_value(flow, s.x_t.clone(), &s.steps, &s.prompts) + vector::<B>(&fl_t, &device);
    let log_f_next = train.state_value(flow, s.x_next.clone(), &states_next, &s.prompts)
        * vector::<B>(&keep_next, &device)
        + vector::<B>(&fl_next, &device);
    (log_f_t, log_f_next)
}

/// The environment's exact log-flows of stacked transitions `s` (constants, in the log-prob
/// reduction's units), the terminal one being β·r(x₀) as in the learned case; `None` when the
/// environment has none.
fn exact_flows<B: AutodiffBackend, E: DiffusionEnv<B>>(
    env: &E,
    s: &Stacked<B>,
    rewards: &[f64],
    beta: f64,
) -> Option<(Tensor<B, 1>, Tensor<B, 1>)> {
    let train = env.train();
    let per_unit = 1.0 / env.scheduler().reduction().to_sum_factor(env.dims());
    let log_f_t = train.exact_log_flow(s.x_t.clone(), &s.steps, &s.prompts)?;
    let t_max = env.scheduler().num_steps();
    let m = rewards.len();
    let states_next: Vec<usize> = s.steps.iter().map(|k| k + 1).collect();
    let next = to_f64(train.exact_log_flow(s.x_next.clone(), &states_next, &s.prompts)?);
    let log_f_next: Vec<f64> = next
        .iter()
        .enumerate()
        .map(|(j, f)| {
            if states_next[j] == t_max {
                beta * rewards[j % m]
            } else {
                f * per_unit
            }
        })
        .collect();
    let device = env.device().clone();
    Some((
        log_f_t.mul_scalar(per_unit).detach(),
        vector::<B>(&log_f_next, &device),
    ))
}

/// mean (ε_θ − ε_old)² at the rows of `terms`: the trust region towards `old`, the model that
/// sampled the epoch (DAG's and ∇-GFlowNet's output regularisation); ε_old is a constant,
/// computed on the inference backend.
pub fn output_regulariser<B: AutodiffBackend, E: DiffusionEnv<B>>(
    env: &E,
    old: &Inner<B, E::Policy>,
    eps: Tensor<B, 2>,
    x_t: Tensor<B, 2>,
    steps: &[usize],
    prompts: &[usize],
) -> Tensor<B, 1> {
    let eps_old = env
        .infer()
        .eps(Denoiser::Policy(old), x_t.inner(), steps, prompts);
    (eps - Tensor::from_inner(eps_old)).powi_scalar(2).mean()
}

/// Whether `env` replaces learned flows by exact ones (asked of one state at the origin).
fn has_exact_flows<B: AutodiffBackend, E: DiffusionEnv<B>>(env: &E) -> bool {
    let origin = Tensor::zeros([1, env.dims()], env.device());
    env.infer().exact_log_flow(origin, &[0], &[0]).is_some()
}

/// β at `epoch` when it rises linearly over the first `anneal` fraction of `epochs`.
pub fn annealed_beta(beta: f64, anneal: f64, epoch: usize, epochs: usize) -> f64 {
    let ramp = anneal * epochs as f64;
    if ramp <= 0.0 {
        return beta;
    }
    beta * ((epoch + 1) as f64 / ramp).min(1.0)
}

/// How the policy learns from the balance residual δ.
#[derive(Clone, Debug, PartialEq)]
pub enum PolicyLoss {
    /// δ² itself (DAG-DB, residual DB): policy and flow share one loss.
    Balance,
    /// DAG-KL: the flow learns from δ² with log p_θ detached; the policy from a PPO-clipped
    /// REINFORCE surrogate whose advantage is −δ (detached).
    Reinforce(ReinforceSettings),
}

/// The fields DAG-DB, DAG-KL and residual DB share; defaults are DAG's (Appendix B.2) and its
/// code's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DbShared {
    /// Trajectories sampled per epoch (512).
    pub sample_batch: usize,
    /// Trajectories per optimizer step, all their transitions trained (256 = 8 × 8 × 4
    /// accumulation; 8 optimizer steps per epoch in the paper would be 64 here).
    pub train_batch: usize,
    /// Final reward exponent β (100, for log-probs averaged over dimensions).
    pub beta: f64,
    /// Fraction of training over which β rises linearly from 0 to `beta` (0.5).
    pub beta_anneal: f64,
    /// Weight of mean (ε_θ − ε_sampler)² (1).
    pub reg_coef: f64,
    /// Optimizer of the policy (LoRA: lr 3e-4).
    pub optim: OptimConfig,
    /// Optimizer of the flow network (lr 3e-4).
    pub flow_optim: OptimConfig,
    /// Weight of δ² on the last `tail_steps` transitions in every δ² loss (DAG-DB's and
    /// residual DB's, DAG-KL's flow loss), against 1 for the others (1: none). An attempt to
    /// escape the toy's plateau (configs/toy_db_study.ron): the last Gaussian steps cannot
    /// balance, and their residuals drown the rest of the chain.
    #[serde(skip_serializing_if = "is_one")]
    pub tail_weight: f64,
    /// How many transitions at the end of the chain `tail_weight` applies to (3).
    #[serde(skip_serializing_if = "is_three")]
    pub tail_steps: usize,
}

// Left out of `config.ron` at their defaults: runs written before they existed keep their ids.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_one(w: &f64) -> bool {
    *w == 1.0
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_three(n: &usize) -> bool {
    *n == 3
}

impl Default for DbShared {
    fn default() -> Self {
        Self {
            sample_batch: 512,
            train_batch: 64,
            beta: 100.0,
            beta_anneal: 0.5,
            reg_coef: 1.0,
            optim: OptimConfig::default(),
            flow_optim: OptimConfig::default(),
            tail_weight: 1.0,
            tail_steps: 3,
        }
    }
}

impl Validate for DbShared {
    fn validate(&self) -> Result<(), Invalid> {
        validate::at_least("sample_batch", self.sample_batch, 1)?;
        validate::count_within("train_batch", self.train_batch, 1, self.sample_batch)?;
        validate::non_negative("beta", self.beta)?;
        validate::within("beta_anneal", self.beta_anneal, 0.0, 1.0)?;
        validate::non_negative("reg_coef", self.reg_coef)?;
        validate::non_negative("tail_weight", self.tail_weight)?;
        self.optim.validate().map_err(|e| e.within("optim"))?;
        self.flow_optim
            .validate()
            .map_err(|e| e.within("flow_optim"))
    }
}

/// Everything the shared loop needs: the shared fields and what tells the objectives apart.
#[derive(Clone, Debug, PartialEq)]
pub struct DbSettings {
    pub shared: DbShared,
    pub backward: BackwardPolicy,
    pub look_ahead: LookAheadModel,
    pub policy_loss: PolicyLoss,
    /// Which sub-trajectories the δ² loss trains (with `PolicyLoss::Balance`).
    pub balance: Balance,
}

/// The training loop of the detailed-balance family: sample an epoch with the current policy,
/// then train every transition of each minibatch of trajectories.
pub struct DbAlgorithm<B: AutodiffBackend, E: DiffusionEnv<B>> {
    settings: DbSettings,
    policy: Trained<B, E::Policy>,
    flow: Trained<B, E::StateNet>,
}

impl<B: AutodiffBackend, E: DiffusionEnv<B> + 'static> DbAlgorithm<B, E> {
    /// # Errors
    /// Batches that are empty or an annealing fraction outside [0, 1].
    pub fn boxed(
        settings: DbSettings,
        env: &E,
        rng: &mut StdRng,
    ) -> Result<Box<dyn Algorithm<B, E>>, String> {
        let s = &settings.shared;
        if s.sample_batch == 0 || s.train_batch == 0 {
            return Err("sample_batch and train_batch must be positive".into());
        }
        if !(0.0..=1.0).contains(&s.beta_anneal) {
            return Err(format!("beta_anneal = {} must be in [0, 1]", s.beta_anneal));
        }
        crate::util::check_trajectories(env, s.sample_batch, "sample_batch")?;
        if s.tail_weight != 1.0 && settings.balance != Balance::Detailed {
            return Err(format!(
                "tail_weight = {} weighs transitions of detailed balance; sub-trajectory and \
                 trajectory balance weigh sub-trajectories",
                s.tail_weight
            ));
        }
        if s.beta_anneal > 0.0 && has_exact_flows(env) {
            return Err(format!(
                "beta_anneal = {}: the environment's exact flows are the final β's; set \
                 beta_anneal: 0 to use them",
                s.beta_anneal
            ));
        }
        Ok(Box::new(Self {
            policy: Trained::new(env.init_policy(rng), s.optim.clone()),
            flow: Trained::new(env.init_state_net(rng), s.flow_optim.clone()),
            settings,
        }))
    }
}

/// One shard's forward pass of a step: the terms with their graphs, the output regulariser,
/// the residuals, the shard's number of trajectories and its copies of the networks.
struct ShardPass<B: AutodiffBackend, P, F> {
    terms: DbTerms<B>,
    reg: Tensor<B, 1>,
    delta: Tensor<B, 1>,
    trajectories: usize,
    policy: P,
    flow: F,
}

impl<B: AutodiffBackend, E: DiffusionEnv<B>> Algorithm<B, E> for DbAlgorithm<B, E> {
    fn train_epoch(&mut self, ctx: &Context<'_, B, E>) -> Result<Scalars, String> {
        let st = &self.settings;
        let sh = &st.shared;
        let beta = annealed_beta(sh.beta, sh.beta_anneal, ctx.epoch, ctx.epochs);
        let mut rng = ctx.rng("detailed_balance");
        let old = self.policy.module.valid();
        let (traj, rewards) = ctx.sample(&self.policy.module, sh.sample_batch, &mut rng);

        let mut logs: [Vec<f64>; 5] = Default::default();
        let mut bands = ResidualBands::default();
        // The losses are means of per-trajectory terms: the step shards by rows. The REINFORCE
        // surrogate's leave-one-out advantages span the minibatch: they are computed across
        // every shard's residuals between the shards' forward passes and their losses.
        let tail = TailWeight {
            steps: sh.tail_steps,
            weight: sh.tail_weight,
        };
        for rows in minibatches(traj.batch_size(), sh.train_batch, &mut rng) {
            let forward = |shard: &Shard<'_, E>| {
                let env = shard.env;
                let policy = shard.local(&self.policy.module);
                let flow = shard.local(&self.flow.module);
                let sub = shard.rows_of(&traj);
                let sub_rewards: Vec<f64> = shard.rows.iter().map(|&r| rewards[r]).collect();
                let t = db_terms(
                    ctx,
                    env,
                    &policy,
                    &flow,
                    &sub,
                    &sub_rewards,
                    beta,
                    st.backward,
                    st.look_ahead,
                );
                let reg = output_regulariser(
                    env,
                    &shard.local_inner(&old),
                    t.eps.clone(),
                    t.x_t.clone(),
                    &t.steps,
                    &t.prompts,
                );
                ShardPass {
                    delta: t.residual(),
                    terms: t,
                    reg,
                    trajectories: sub.batch_size(),
                    policy,
                    flow,
                }
            };
            let across = |parts: &[ShardPass<B, E::Policy, E::StateNet>]| match &st.policy_loss {
                PolicyLoss::Balance => vec![Vec::new(); parts.len()],
                PolicyLoss::Reinforce(kl) => {
                    let residuals: Vec<Vec<f64>> = parts
                        .iter()
                        .map(|p| to_f64(p.delta.clone().detach()))
                        .collect();
                    crate::reinforce::advantages(&residuals, traj.num_steps(), kl)
                }
            };
            let finish = |_: &Shard<'_, E>, pass: ShardPass<B, _, _>, advantages: Vec<f64>| {
                let ShardPass {
                    terms: t,
                    reg,
                    delta,
                    trajectories: m,
                    policy,
                    flow,
                } = pass;
                let steps = traj.num_steps();
                let delta_sq = delta.clone().detach().powi_scalar(2);
                let (loss, balance, policy_term) = match &st.policy_loss {
                    PolicyLoss::Balance => {
                        let db = balance_loss(delta, m, steps, st.balance, tail);
                        (db.clone(), db.clone(), db)
                    }
                    PolicyLoss::Reinforce(kl) => {
                        let flow_loss = balance_loss(
                            t.log_f_t.clone() + t.log_pf.clone().detach()
                                - t.log_f_next.clone()
                                - t.log_pb.clone(),
                            m,
                            steps,
                            Balance::Detailed,
                            tail,
                        );
                        let surrogate = crate::reinforce::reinforce_surrogate(
                            t.log_pf.clone(),
                            t.log_pf_old.clone(),
                            &advantages,
                            kl,
                        );
                        (
                            flow_loss.clone() + surrogate.clone().mul_scalar(kl.kl_coef),
                            flow_loss,
                            surrogate,
                        )
                    }
                };
                let loss = loss + reg.clone().mul_scalar(sh.reg_coef);
                let logged = [balance.detach(), policy_term.detach(), reg.detach()];
                (loss, (logged, delta_sq, t.steps, policy, flow))
            };
            let mut step = ctx.backward_sharded_with(&rows, forward, across, finish);
            for (i, log) in logs.iter_mut().take(3).enumerate() {
                log.push(step.mean(|t| scalar(t.0[i].clone())));
            }
            for (_, (_, delta_sq, steps, _, _)) in &step.parts {
                bands.add(steps, &to_f64(delta_sq.clone()), traj.num_steps());
            }
            let policies = step.parts.iter().map(|(_, t)| &t.3);
            logs[3].push(
                self.policy
                    .step_sharded(step.grads.iter_mut().zip(policies)),
            );
            let flows = step.parts.iter().map(|(_, t)| &t.4);
            logs[4].push(self.flow.step_sharded(step.grads.iter_mut().zip(flows)));
        }
        let mut scalars = vec![
            ("reward_mean".into(), mean(&rewards)),
            ("reward_std".into(), std(&rewards)),
            ("beta".into(), beta),
            ("db_loss".into(), mean(&logs[0])),
            ("policy_loss".into(), mean(&logs[1])),
            ("reg".into(), mean(&logs[2])),
            ("grad_norm".into(), mean(&logs[3])),
            ("flow_grad_norm".into(), mean(&logs[4])),
        ];
        scalars.extend(bands.scalars());
        Ok(scalars)
    }

    fn policy(&self) -> &E::Policy {
        &self.policy.module
    }

    fn data_parallel(&self) -> Sharding {
        Sharding::SamplingAndSteps
    }

    fn target(&self, env: &E) -> Option<TargetSpec> {
        Some(TargetSpec {
            kind: match self.settings.backward {
                BackwardPolicy::Noising => TargetKind::Power,
                BackwardPolicy::Pretrained => TargetKind::Tilted,
            },
            beta: self.settings.shared.beta * env.scheduler().reduction().to_sum_factor(env.dims()),
        })
    }

    fn save(&self, dir: &Path) -> Result<(), String> {
        self.policy.save(dir, "policy")?;
        self.flow.save(dir, "flow")
    }

    fn load(&mut self, dir: &Path) -> Result<(), String> {
        self.policy.load(dir, "policy")?;
        self.flow.load(dir, "flow")
    }
}
