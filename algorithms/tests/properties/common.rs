//! A linear-Gaussian diffusion for exact property tests: the base is N(m, s²I), so its ε is
//! linear in x; the policy adds a per-step offset to ε, flows are linear in x and g_φ is a
//! per-state vector. With a linear reward r = a·x, every objective's exact solution is then
//! representable, and parameters are single tables whose gradients are easy to read.

#![allow(dead_code)]

use burn::backend::{Autodiff, Flex};
use burn::module::{Module, Param};
use burn::tensor::{backend::Backend, Int, Tensor, TensorData};
use rand::rngs::StdRng;

use bench_algorithms::Context;
use bench_envs::{
    Denoiser, DiffusionEnv, LogProbReduction, SamplerConfig, ScheduleConfig, Scheduler,
};
use bench_rewards::Reward;

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

pub struct LinearGaussian {
    pub device: burn::tensor::Device<AB>,
    pub scheduler: Scheduler,
    pub mean: [f64; D],
    pub std: f64,
    prompts: Vec<String>,
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
        Self {
            device: Default::default(),
            scheduler,
            mean: [0.3, -0.2],
            std: 0.5,
            prompts: vec!["gauss".into()],
        }
    }

    pub fn steps(&self) -> usize {
        self.scheduler.num_steps()
    }

    /// Variance of the noised base at step `k`.
    pub fn var(&self, k: usize) -> f64 {
        let a = self.scheduler.schedule().alpha_bar(k);
        a * self.std * self.std + 1.0 - a
    }

    pub fn column(&self, v: Vec<f64>) -> Tensor<AB, 2> {
        let n = v.len();
        Tensor::from_data(
            TensorData::new(v.into_iter().map(|x| x as f32).collect::<Vec<_>>(), [n, 1]),
            &self.device,
        )
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

impl DiffusionEnv<AB> for LinearGaussian {
    type Policy = Table<AB>;
    type StateNet = LinearFlow<AB>;
    type FieldNet = Table<AB>;

    fn device(&self) -> &burn::tensor::Device<AB> {
        &self.device
    }
    fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }
    fn prompts(&self) -> &[String] {
        &self.prompts
    }
    fn dims(&self) -> usize {
        D
    }
    fn init_policy(&self, _rng: &mut StdRng) -> Table<AB> {
        self.policy(vec![0.0; self.steps() * D])
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

    fn eps_unguided(
        &self,
        net: Denoiser<'_, Table<AB>>,
        x: Tensor<AB, 2>,
        steps: &[usize],
        _prompts: Option<&[usize]>,
    ) -> Tensor<AB, 2> {
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
        net: &LinearFlow<AB>,
        x: Tensor<AB, 2>,
        states: &[usize],
        _prompts: &[usize],
    ) -> Tensor<AB, 1> {
        let n = states.len();
        let idx = Tensor::<AB, 1, Int>::from_data(
            TensorData::new(states.iter().map(|&i| i as i64).collect::<Vec<_>>(), [n]),
            &self.device,
        );
        (x * net.w.rows(states)).sum_dim(1).reshape([n]) + net.c.val().select(0, idx)
    }

    fn field(
        &self,
        net: &Table<AB>,
        _x: Tensor<AB, 2>,
        states: &[usize],
        _prompts: &[usize],
    ) -> Tensor<AB, 2> {
        net.rows(states)
    }

    fn decode(&self, x0: Tensor<AB, 2>) -> Tensor<AB, 4> {
        let n = x0.dims()[0];
        x0.reshape([n, D, 1, 1])
    }
}

/// r(x) = a·x.
pub struct LinearReward(pub [f64; D]);

impl Reward<AB> for LinearReward {
    fn name(&self) -> &str {
        "linear"
    }
    fn score(&self, images: Tensor<AB, 4>, _prompts: &[String]) -> Tensor<AB, 1> {
        let n = images.dims()[0];
        let a = Tensor::<AB, 2>::from_data(
            TensorData::new(self.0.map(|v| v as f32).to_vec(), [1, D]),
            &images.device(),
        );
        (images.reshape([n, D]) * a).sum_dim(1).reshape([n])
    }
    fn differentiable(&self) -> bool {
        true
    }
}

pub fn context<'a>(
    env: &'a LinearGaussian,
    reward: &'a dyn Reward<AB>,
) -> Context<'a, AB, LinearGaussian> {
    Context {
        env,
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
