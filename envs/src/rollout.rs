//! Sampling trajectories through any environment, keeping what the objectives need.

use burn::tensor::{backend::AutodiffBackend, backend::Backend, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::StandardNormal;

use crate::env::{Denoiser, DiffusionModel};

/// A batch of trajectories, detached from any graph.
#[derive(Clone, Debug)]
pub struct Trajectory<B: Backend> {
    /// Prompt index of each row.
    pub prompts: Vec<usize>,
    /// `num_steps + 1` states `[N, dims]`: `states[0]` is x_T, the last is x_0.
    pub states: Vec<Tensor<B, 2>>,
    /// Log-probability of each transition under the sampling policy: `num_steps` × `[N]`.
    pub log_probs: Vec<Tensor<B, 1>>,
}

/// Rows stacked step-major (`row = s·N + i`) for one batched forward pass over many steps.
pub struct Stacked<B: Backend> {
    pub x_t: Tensor<B, 2>,
    pub x_next: Tensor<B, 2>,
    /// Inference step of each row.
    pub steps: Vec<usize>,
    pub prompts: Vec<usize>,
}

/// Standard normal noise `[n, dims]` from a host RNG, so runs replay exactly from their seed.
pub fn normal_tensor<B: Backend>(
    n: usize,
    dims: usize,
    rng: &mut StdRng,
    device: &B::Device,
) -> Tensor<B, 2> {
    Tensor::from_data(
        TensorData::new(normal_data(n * dims, rng), [n, dims]),
        device,
    )
}

/// `len` standard normal draws from a host RNG, in the order [`normal_tensor`] uses them.
pub fn normal_data(len: usize, rng: &mut StdRng) -> Vec<f32> {
    (0..len).map(|_| rng.sample(StandardNormal)).collect()
}

impl<B: Backend> Trajectory<B> {
    /// The same trajectories on the autodiff backend over `B`, as constants (leaves without
    /// a graph; no copy), for training on them.
    pub fn lift<A: AutodiffBackend<InnerBackend = B>>(self) -> Trajectory<A> {
        Trajectory {
            prompts: self.prompts,
            states: self.states.into_iter().map(Tensor::from_inner).collect(),
            log_probs: self.log_probs.into_iter().map(Tensor::from_inner).collect(),
        }
    }

    /// The same trajectories on `device` (a data-parallel shard gathered, or sent out).
    #[must_use]
    pub fn to_device(&self, device: &B::Device) -> Self {
        Self {
            prompts: self.prompts.clone(),
            states: self
                .states
                .iter()
                .map(|s| s.clone().to_device(device))
                .collect(),
            log_probs: self
                .log_probs
                .iter()
                .map(|l| l.clone().to_device(device))
                .collect(),
        }
    }

    /// The rows of `parts` in turn, as one batch (on the first part's device).
    ///
    /// # Panics
    /// `parts` is empty or its parts have different numbers of steps.
    pub fn cat(parts: Vec<Self>) -> Self {
        let steps = parts[0].num_steps();
        assert!(parts.iter().all(|p| p.num_steps() == steps));
        Self {
            prompts: parts
                .iter()
                .flat_map(|p| p.prompts.iter().copied())
                .collect(),
            states: (0..=steps)
                .map(|k| Tensor::cat(parts.iter().map(|p| p.states[k].clone()).collect(), 0))
                .collect(),
            log_probs: (0..steps)
                .map(|k| Tensor::cat(parts.iter().map(|p| p.log_probs[k].clone()).collect(), 0))
                .collect(),
        }
    }

    pub fn batch_size(&self) -> usize {
        self.prompts.len()
    }

    pub fn num_steps(&self) -> usize {
        self.log_probs.len()
    }

    /// The final samples x_0.
    pub fn final_states(&self) -> Tensor<B, 2> {
        self.states[self.num_steps()].clone()
    }

    /// Keeps the rows `rows` of every tensor.
    pub fn select_rows(&self, rows: &[usize]) -> Self {
        let device = self.states[0].device();
        let idx = Tensor::from_data(
            TensorData::new(
                rows.iter().map(|&r| r as i64).collect::<Vec<_>>(),
                [rows.len()],
            ),
            &device,
        );
        Self {
            prompts: rows.iter().map(|&r| self.prompts[r]).collect(),
            states: self
                .states
                .iter()
                .map(|s| s.clone().select(0, idx.clone()))
                .collect(),
            log_probs: self
                .log_probs
                .iter()
                .map(|l| l.clone().select(0, idx.clone()))
                .collect(),
        }
    }

    /// The transitions of steps `steps` stacked into one batch.
    pub fn stack(&self, steps: &[usize]) -> Stacked<B> {
        let n = self.batch_size();
        Stacked {
            x_t: Tensor::cat(steps.iter().map(|&k| self.states[k].clone()).collect(), 0),
            x_next: Tensor::cat(
                steps.iter().map(|&k| self.states[k + 1].clone()).collect(),
                0,
            ),
            steps: steps
                .iter()
                .flat_map(|&k| std::iter::repeat_n(k, n))
                .collect(),
            prompts: steps
                .iter()
                .flat_map(|_| self.prompts.iter().copied())
                .collect(),
        }
    }

    /// Chosen transitions `(row, step)` stacked into one batch, in the order given (rows may
    /// each train different steps, e.g. after stratified subsampling).
    pub fn gather(&self, picks: &[(usize, usize)]) -> Stacked<B> {
        let row = |t: &Tensor<B, 2>, i: usize| t.clone().slice(i..i + 1);
        Stacked {
            x_t: Tensor::cat(
                picks
                    .iter()
                    .map(|&(i, k)| row(&self.states[k], i))
                    .collect(),
                0,
            ),
            x_next: Tensor::cat(
                picks
                    .iter()
                    .map(|&(i, k)| row(&self.states[k + 1], i))
                    .collect(),
                0,
            ),
            steps: picks.iter().map(|&(_, k)| k).collect(),
            prompts: picks.iter().map(|&(i, _)| self.prompts[i]).collect(),
        }
    }

    /// Sampling log-probabilities of steps `steps`, stacked as [`Trajectory::stack`] does.
    pub fn stacked_log_probs(&self, steps: &[usize]) -> Tensor<B, 1> {
        Tensor::cat(
            steps.iter().map(|&k| self.log_probs[k].clone()).collect(),
            0,
        )
    }
}

/// Samples one trajectory per prompt index with `net`, from standard normal x_T. Nothing here
/// is differentiated: pass the model on the inner backend ([`crate::DiffusionEnv::infer`]).
pub fn rollout<B: Backend, M: DiffusionModel<B>>(
    model: &M,
    net: Denoiser<'_, M::Policy>,
    prompts: Vec<usize>,
    rng: &mut StdRng,
) -> Trajectory<B> {
    let x = normal_tensor::<B>(prompts.len(), model.dims(), rng, model.device());
    rollout_from(model, net, x, prompts, rng, |_| ())
}

/// [`rollout`] from given initial states `x_T`, calling `on_step` after each transition with
/// the number of steps done (progress bars).
pub fn rollout_from<B: Backend, M: DiffusionModel<B>>(
    model: &M,
    net: Denoiser<'_, M::Policy>,
    mut x: Tensor<B, 2>,
    prompts: Vec<usize>,
    rng: &mut StdRng,
    mut on_step: impl FnMut(usize),
) -> Trajectory<B> {
    let n = prompts.len();
    let device = model.device();
    let steps = model.scheduler().num_steps();
    let mut states = vec![x.clone()];
    let mut log_probs = Vec::with_capacity(steps);
    for k in 0..steps {
        let ks = vec![k; n];
        let transition = model.transition(net, x.clone(), &ks, &prompts);
        let next = transition.sample(normal_tensor::<B>(n, model.dims(), rng, device));
        log_probs.push(transition.log_prob(next.clone(), model.scheduler().reduction()));
        states.push(next.clone());
        x = next;
        on_step(k + 1);
    }
    Trajectory {
        prompts,
        states,
        log_probs,
    }
}
