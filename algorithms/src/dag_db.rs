//! DAG-DB (Zhang et al., "Improving GFlowNets for text-to-image diffusion alignment"):
//! detailed balance on every denoising transition with a forward-looking flow
//!
//! log F(x_t) = F_φ(x_t, t, c) + β·r(x̂₀(x_t)),   log F(x₀) = β·r(x₀),
//! ℓ = (log F(x_t) + log p_θ(x_{t−1}|x_t) − log F(x_{t−1}) − log p_B(x_t|x_{t−1}))²,
//!
//! where p_B is the noising kernel q (target ∝ exp(β·r)) or, with `tilted` (the paper's
//! Remark 3), the pretrained denoiser p_base(x_{t−1}|x_t) (target ∝ p_base·exp(β·r)).
//! x̂₀ comes from the model being trained (frozen for it), without guidance, as a constant, as
//! in the reference code; the output is regularised towards the guided ε of the model that
//! sampled the epoch (a trust region, coefficient 1 in the paper).

use std::path::Path;

use burn::tensor::{backend::AutodiffBackend, Tensor};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use bench_envs::{Denoiser, DiffusionEnv};
use bench_rewards::toy::TargetKind;

use crate::algorithm::{Algorithm, Context, Scalars, TargetSpec};
use crate::checkpoint::{load_module, save_module};
use crate::optim::{OptimConfig, Trainer};
use crate::util::{mean, minibatches, scalar, std, vector};

/// DAG-DB's hyper-parameters; defaults are the paper's (Appendix B.2) and its code's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DagDbConfig {
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
    /// Remark 3: the pretrained denoiser replaces the noising kernel as backward policy.
    pub tilted: bool,
    /// Optimizer of the policy (LoRA: lr 3e-4).
    pub optim: OptimConfig,
    /// Optimizer of the flow network (lr 3e-4).
    pub flow_optim: OptimConfig,
}

impl Default for DagDbConfig {
    fn default() -> Self {
        Self {
            sample_batch: 512,
            train_batch: 64,
            beta: 100.0,
            beta_anneal: 0.5,
            reg_coef: 1.0,
            tilted: false,
            optim: OptimConfig::default(),
            flow_optim: OptimConfig::default(),
        }
    }
}

pub struct DagDb<B: AutodiffBackend, E: DiffusionEnv<B>> {
    config: DagDbConfig,
    policy: E::Policy,
    flow: E::StateNet,
    policy_trainer: Trainer<B, E::Policy>,
    flow_trainer: Trainer<B, E::StateNet>,
}

impl<B: AutodiffBackend, E: DiffusionEnv<B> + 'static> DagDb<B, E> {
    /// # Errors
    /// Invalid parameters.
    pub fn build(
        params: &ron::Value,
        env: &E,
        rng: &mut StdRng,
    ) -> Result<Box<dyn Algorithm<B, E>>, String> {
        let config: DagDbConfig = bench_rewards::registry::params(params)?;
        if config.sample_batch == 0 || config.train_batch == 0 {
            return Err("sample_batch and train_batch must be positive".into());
        }
        if !(0.0..=1.0).contains(&config.beta_anneal) {
            return Err(format!(
                "beta_anneal = {} must be in [0, 1]",
                config.beta_anneal
            ));
        }
        Ok(Box::new(Self {
            policy: env.init_policy(rng),
            flow: env.init_state_net(rng),
            policy_trainer: Trainer::new(config.optim.clone()),
            flow_trainer: Trainer::new(config.flow_optim.clone()),
            config,
        }))
    }
}

impl<B: AutodiffBackend, E: DiffusionEnv<B>> DagDb<B, E> {
    /// β at `epoch`: linear from β/(anneal·epochs) up to β, then constant.
    pub fn beta_at(&self, epoch: usize, epochs: usize) -> f64 {
        let ramp = self.config.beta_anneal * epochs as f64;
        if ramp <= 0.0 {
            return self.config.beta;
        }
        self.config.beta * ((epoch + 1) as f64 / ramp).min(1.0)
    }

    /// r(x̂₀(x)) for states `x` at inference steps `steps`, from `current` (the model being
    /// trained, frozen) without guidance: the forward-looking term, a constant.
    fn looking_ahead(
        ctx: &Context<'_, B, E>,
        current: &E::Policy,
        x: Tensor<B, 2>,
        steps: &[usize],
        prompts: &[usize],
    ) -> Vec<f64> {
        let env = ctx.env;
        let eps = env.eps_unguided(Denoiser::Policy(current), x.clone(), steps, Some(prompts));
        ctx.score(env.scheduler().predict_x0(x, eps, steps), prompts)
    }
}

impl<B: AutodiffBackend, E: DiffusionEnv<B>> Algorithm<B, E> for DagDb<B, E> {
    fn train_epoch(&mut self, ctx: &Context<'_, B, E>) -> Result<Scalars, String> {
        let env = ctx.env;
        let device = env.device().clone();
        let reduction = env.scheduler().reduction();
        let beta = self.beta_at(ctx.epoch, ctx.epochs);
        let mut rng = ctx.rng("dag_db");
        let frozen = burn::module::Module::no_grad(self.policy.clone());
        let (traj, rewards) = ctx.sample(&self.policy, self.config.sample_batch, &mut rng);
        let n = traj.batch_size();
        let t_max = traj.num_steps();
        let steps: Vec<usize> = (0..t_max).collect();

        let (mut db_losses, mut regs, mut pnorms, mut fnorms) = (vec![], vec![], vec![], vec![]);
        for rows in minibatches(n, self.config.train_batch, &mut rng) {
            let sub = traj.select_rows(&rows);
            // Row j = k·m + i: step k of trajectory rows[i].
            let s = sub.stack(&steps);
            let current = burn::module::Module::no_grad(self.policy.clone());
            let fl_t: Vec<f64> =
                Self::looking_ahead(ctx, &current, s.x_t.clone(), &s.steps, &s.prompts)
                    .into_iter()
                    .map(|r| beta * r)
                    .collect();
            // The next state's term; at the last step x_{t−1} = x₀ and log F(x₀) = β·r(x₀).
            let next_steps: Vec<usize> = s.steps.iter().map(|&k| (k + 1).min(t_max - 1)).collect();
            let ahead =
                Self::looking_ahead(ctx, &current, s.x_next.clone(), &next_steps, &s.prompts);
            let last: Vec<bool> = s.steps.iter().map(|&k| k + 1 == t_max).collect();
            let m = rows.len();
            let fl_next: Vec<f64> = (0..last.len())
                .map(|j| {
                    beta * if last[j] {
                        rewards[rows[j % m]]
                    } else {
                        ahead[j]
                    }
                })
                .collect();
            let keep_next: Vec<f64> = last.iter().map(|&l| if l { 0.0 } else { 1.0 }).collect();
            let states_t: Vec<usize> = s.steps.clone();
            let states_next: Vec<usize> = s.steps.iter().map(|k| k + 1).collect();

            let log_f_t = env.state_value(&self.flow, s.x_t.clone(), &states_t, &s.prompts)
                + vector::<B>(&fl_t, &device);
            let log_f_next =
                env.state_value(&self.flow, s.x_next.clone(), &states_next, &s.prompts)
                    * vector::<B>(&keep_next, &device)
                    + vector::<B>(&fl_next, &device);

            let eps = env.eps(
                Denoiser::Policy(&self.policy),
                s.x_t.clone(),
                &s.steps,
                &s.prompts,
            );
            let log_pf = env
                .scheduler()
                .transition(s.x_t.clone(), eps.clone(), &s.steps)
                .log_prob(s.x_next.clone(), reduction);
            let log_pb = if self.config.tilted {
                env.transition(Denoiser::Base, s.x_t.clone(), &s.steps, &s.prompts)
                    .log_prob(s.x_next.clone(), reduction)
            } else {
                env.scheduler()
                    .noising_kernel(s.x_next.clone(), &s.steps)
                    .log_prob(s.x_t.clone(), reduction)
            }
            .detach();

            let residual = log_f_t + log_pf - log_f_next - log_pb;
            let db = residual.powi_scalar(2).mean();
            let eps_old = env
                .eps(Denoiser::Policy(&frozen), s.x_t, &s.steps, &s.prompts)
                .detach();
            let reg: Tensor<B, 1> = (eps - eps_old).powi_scalar(2).mean();
            let loss = db.clone() + reg.clone().mul_scalar(self.config.reg_coef);
            db_losses.push(scalar(db.detach()));
            regs.push(scalar(reg.detach()));

            let mut grads = loss.backward();
            let (policy, pn) = self.policy_trainer.step(self.policy.clone(), &mut grads);
            let (flow, fnorm) = self.flow_trainer.step(self.flow.clone(), &mut grads);
            self.policy = policy;
            self.flow = flow;
            pnorms.push(pn);
            fnorms.push(fnorm);
        }
        Ok(vec![
            ("reward_mean".into(), mean(&rewards)),
            ("reward_std".into(), std(&rewards)),
            ("beta".into(), beta),
            ("db_loss".into(), mean(&db_losses)),
            ("reg".into(), mean(&regs)),
            ("grad_norm".into(), mean(&pnorms)),
            ("flow_grad_norm".into(), mean(&fnorms)),
        ])
    }

    fn policy(&self) -> &E::Policy {
        &self.policy
    }

    fn target(&self, env: &E) -> Option<TargetSpec> {
        Some(TargetSpec {
            kind: if self.config.tilted {
                TargetKind::Tilted
            } else {
                TargetKind::Power
            },
            beta: self.config.beta * env.scheduler().reduction().to_sum_factor(env.dims()),
        })
    }

    fn save(&self, dir: &Path) -> Result<(), String> {
        save_module(&self.policy, &dir.join("policy.safetensors"))?;
        save_module(&self.flow, &dir.join("flow.safetensors"))?;
        self.policy_trainer.save(&dir.join("policy-optim"))?;
        self.flow_trainer.save(&dir.join("flow-optim"))
    }

    fn load(&mut self, dir: &Path) -> Result<(), String> {
        load_module(&mut self.policy, &dir.join("policy.safetensors"))?;
        load_module(&mut self.flow, &dir.join("flow.safetensors"))?;
        self.policy_trainer
            .load(&dir.join("policy-optim"), &self.policy)?;
        self.flow_trainer.load(&dir.join("flow-optim"), &self.flow)
    }
}
