//! A linear-Gaussian diffusion for exact property tests: the base is N(m, s²I), so its ε is
//! linear in x; the policy adds a per-step offset to ε, flows are linear in x and g_φ is a
//! per-state vector. With a linear reward r = a·x, every objective's exact solution is then
//! representable, and parameters are single tables whose gradients are easy to read.

#![allow(dead_code)]

use std::ops::Deref;

use burn::backend::{Autodiff, Flex};
use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Int, Tensor, TensorData};
use rand::rngs::StdRng;

use bench_algorithms::Context;
use bench_core::SampleKind;
use bench_envs::{
    Denoiser, DiffusionEnv, DiffusionModel, EnvInfo, Environment, LogProbReduction, SamplerConfig,
    ScheduleConfig, Scheduler,
};
use bench_rewards::{OnAnyBackend, Reward, TensorReward};

pub type AB = Autodiff<Flex>;
pub const D: usize = 2;

/// A `[rows, D]` table; row lookup by index.
#[derive(Module, Debug)]
pub struct Table<B: Backend> {
    pub values: Param<Tensor<B, 2>>,
}

impl<B: Backend> Table<B> {
    pub fn new(values: Vec<f32>, rows: usize, device: &B::Device) -> Self {
        Self {
            values: Param::from_tensor(Tensor::from_data(
                TensorData::new(values, [rows, D]),
                device,
            )),
        }
    }

    pub fn rows(&self, idx: &[usize]) -> Tensor<B, 2> {
        let device = self.values.val().device();
        let idx = Tensor::<B, 1, Int>::from_data(
            TensorData::new(
                idx.iter().map(|&i| i as i64).collect::<Vec<_>>(),
                [idx.len()],
            ),
            &device,
        );
        self.values.val().select(0, idx)
    }

    pub fn host(&self) -> Vec<f32> {
        self.values.val().into_data().to_vec::<f32>().unwrap()
    }
}

/// log F(x, state) = w_state · x + c_state.
#[derive(Module, Debug)]
pub struct LinearFlow<B: Backend> {
    pub w: Table<B>,
    pub c: Param<Tensor<B, 1>>,
}

/// The linear-Gaussian diffusion on one backend.
pub struct LinearModel<B: Backend> {
    pub device: B::Device,
    pub scheduler: Scheduler,
    pub mean: [f64; D],
    pub std: f64,
}

impl<B: Backend> LinearModel<B> {
    pub fn steps(&self) -> usize {
        self.scheduler.num_steps()
    }

    /// Variance of the noised base at step `k`.
    pub fn var(&self, k: usize) -> f64 {
        let a = self.scheduler.schedule().alpha_bar(k);
        a * self.std * self.std + 1.0 - a
    }

    pub fn column(&self, v: Vec<f64>) -> Tensor<B, 2> {
        let n = v.len();
        Tensor::from_data(
            TensorData::new(v.into_iter().map(|x| x as f32).collect::<Vec<_>>(), [n, 1]),
            &self.device,
        )
    }
}

impl<B: Backend> DiffusionModel<B> for LinearModel<B> {
    type Policy = Table<B>;
    type StateNet = LinearFlow<B>;
    type FieldNet = Table<B>;

    fn device(&self) -> &B::Device {
        &self.device
    }
    fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }
    fn dims(&self) -> usize {
        D
    }

    fn eps_unguided(
        &self,
        net: Denoiser<'_, Table<B>>,
        x: Tensor<B, 2>,
        steps: &[usize],
        _prompts: Option<&[usize]>,
    ) -> Tensor<B, 2> {
        // ε = √(1−ᾱ)(x − √ᾱ m)/v for x ~ N(√ᾱ m, v).
        let s = self.scheduler.schedule();
        let scale: Vec<f64> = steps
            .iter()
            .map(|&k| (1.0 - s.alpha_bar(k)).sqrt() / self.var(k))
            .collect();
        let shift: Vec<f32> = steps
            .iter()
            .flat_map(|&k| self.mean.map(|m| (s.alpha_bar(k).sqrt() * m) as f32))
            .collect();
        let shift = Tensor::from_data(TensorData::new(shift, [steps.len(), D]), &self.device);
        let base = (x - shift) * self.column(scale);
        match net {
            Denoiser::Base => base,
            Denoiser::Policy(p) => base + p.rows(steps),
        }
    }

    fn state_value(
        &self,
        net: &LinearFlow<B>,
        x: Tensor<B, 2>,
        states: &[usize],
        _prompts: &[usize],
    ) -> Tensor<B, 1> {
        let n = states.len();
        let idx = Tensor::<B, 1, Int>::from_data(
            TensorData::new(states.iter().map(|&i| i as i64).collect::<Vec<_>>(), [n]),
            &self.device,
        );
        (x * net.w.rows(states)).sum_dim(1).reshape([n]) + net.c.val().select(0, idx)
    }

    fn field(
        &self,
        net: &Table<B>,
        _x: Tensor<B, 2>,
        states: &[usize],
        _prompts: &[usize],
    ) -> Tensor<B, 2> {
        net.rows(states)
    }

    fn decode(&self, x0: Tensor<B, 2>) -> Tensor<B, 4> {
        let n = x0.dims()[0];
        x0.reshape([n, D, 1, 1])
    }
}

/// The environment: the model on the autodiff backend (what the tests differentiate, reached
/// through `Deref`) and on its inner backend.
pub struct LinearGaussian {
    model: LinearModel<AB>,
    inner: LinearModel<Flex>,
    prompts: Vec<String>,
}

impl Deref for LinearGaussian {
    type Target = LinearModel<AB>;

    fn deref(&self) -> &LinearModel<AB> {
        &self.model
    }
}

impl LinearGaussian {
    pub fn new(steps: usize) -> Self {
        let scheduler = Scheduler::new(SamplerConfig {
            guidance: 1.0,
            log_prob: LogProbReduction::Sum,
            schedule: ScheduleConfig {
                inference_steps: steps,
                ..ScheduleConfig::default()
            },
            ..SamplerConfig::default()
        })
        .unwrap();
        let (mean, std) = ([0.3, -0.2], 0.5);
        Self {
            model: LinearModel {
                device: Default::default(),
                scheduler: scheduler.clone(),
                mean,
                std,
            },
            inner: LinearModel {
                device: Default::default(),
                scheduler,
                mean,
                std,
            },
            prompts: vec!["gauss".into()],
        }
    }

    pub fn policy(&self, offsets: Vec<f32>) -> Table<AB> {
        Table::new(offsets, self.steps(), &self.device)
    }

    /// A policy whose ε offsets are pseudo-random in [−scale, scale].
    pub fn random_policy(&self, seed: u64, scale: f32) -> Table<AB> {
        let offsets = pseudo_random(self.steps() * D, seed);
        self.policy(offsets.iter().map(|v| scale * v).collect())
    }

    pub fn field(&self, values: Vec<f32>) -> Table<AB> {
        Table::new(values, self.steps() + 1, &self.device)
    }
}

impl EnvInfo for LinearGaussian {
    fn prompts(&self) -> &[String] {
        &self.prompts
    }
    fn sample_kind(&self) -> SampleKind {
        SampleKind::Points2d
    }
}

impl Environment<AB> for LinearGaussian {
    type Policy = Table<AB>;

    fn device(&self) -> &burn::tensor::Device<AB> {
        &self.model.device
    }
    fn init_policy(&self, _rng: &mut StdRng) -> Table<AB> {
        self.policy(vec![0.0; self.steps() * D])
    }
    fn eval_batch(&self) -> usize {
        usize::MAX
    }
}

impl DiffusionEnv<AB> for LinearGaussian {
    type StateNet = LinearFlow<AB>;
    type FieldNet = Table<AB>;
    type Train = LinearModel<AB>;
    type Infer = LinearModel<Flex>;

    fn train(&self) -> &LinearModel<AB> {
        &self.model
    }
    fn infer(&self) -> &LinearModel<Flex> {
        &self.inner
    }
    fn init_state_net(&self, _rng: &mut StdRng) -> LinearFlow<AB> {
        LinearFlow {
            w: Table::new(
                vec![0.0; (self.steps() + 1) * D],
                self.steps() + 1,
                &self.device,
            ),
            c: Param::from_tensor(Tensor::zeros([self.steps() + 1], &self.device)),
        }
    }
    fn init_field_net(&self, _rng: &mut StdRng) -> Table<AB> {
        self.field(vec![0.0; (self.steps() + 1) * D])
    }
}

/// r(x) = a·x.
pub struct LinearScore(pub [f64; D]);

impl TensorReward for LinearScore {
    fn name(&self) -> &str {
        "linear"
    }
    fn score<B: Backend>(&self, images: Tensor<B, 4>, _prompts: &[String]) -> Tensor<B, 1> {
        let n = images.dims()[0];
        let a = Tensor::<B, 2>::from_data(
            TensorData::new(self.0.map(|v| v as f32).to_vec(), [1, D]),
            &images.device(),
        );
        (images.reshape([n, D]) * a).sum_dim(1).reshape([n])
    }
}

/// r(x) = a·x, as a reward.
#[allow(non_snake_case)]
pub fn LinearReward(a: [f64; D]) -> OnAnyBackend<LinearScore> {
    OnAnyBackend(LinearScore(a))
}

/// The differentiable side of a reward built here.
pub fn gradient_of(reward: &dyn Reward<AB>) -> &dyn bench_rewards::DifferentiableReward<AB> {
    reward.differentiable().expect("a differentiable reward")
}

pub fn context<'a>(
    env: &'a LinearGaussian,
    reward: &'a dyn Reward<AB>,
) -> Context<'a, AB, LinearGaussian> {
    Context {
        env,
        replicas: &[],
        replica_rewards: &[],
        reward,
        epoch: 0,
        epochs: 1,
        seed: 0,
    }
}

/// The gradient of `loss` with respect to a table, on the host.
pub fn table_grad(table: &Table<AB>, loss: Tensor<AB, 1>) -> Vec<f32> {
    let grads = loss.backward();
    table
        .values
        .grad(&grads)
        .map(|g| g.into_data().to_vec::<f32>().unwrap())
        .unwrap_or_else(|| vec![0.0; table.host().len()])
}

/// A copy of `table` moved by `h·v`.
pub fn shifted(table: &Table<AB>, v: &[f32], h: f32, rows: usize) -> Table<AB> {
    let values: Vec<f32> = table.host().iter().zip(v).map(|(t, d)| t + h * d).collect();
    Table::new(values, rows, &table.values.val().device())
}

pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

/// Deterministic pseudo-random values in [−1, 1].
pub fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}
