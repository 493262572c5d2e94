//! Data parallelism within one run: a minibatch split by rows over the run's devices, each
//! device computing its rows' loss and gradients with its own copy of the networks, and the
//! gradients summed on the main device before one optimizer step there.
//!
//! A shard's row-mean loss is weighted by its fraction of the rows, so the summed gradient is
//! the whole minibatch's: the step equals one device's with the same global batch, up to float
//! reduction order. LoRA and flow-head gradients are small (a few MB for SD), so they are
//! gathered to the main device rather than all-reduced in a ring (burn's `collective`): one
//! optimizer, one set of weights, no peers to keep in step.

use std::ops::Range;

use burn::module::{AutodiffModule, Module};
use burn::tensor::{backend::AutodiffBackend, Tensor};

use bench_envs::{shard_rows, DiffusionEnv, DiffusionModel, Trajectory};

use crate::algorithm::Context;

/// One device's share of a data-parallel step.
pub struct Shard<'s, E> {
    /// The run's environment on this device.
    pub env: &'s E,
    /// This device's rows of the minibatch.
    pub rows: &'s [usize],
    /// Where `rows` lie within the minibatch's rows (for what was drawn for the whole
    /// minibatch, such as noise, before it was split).
    pub positions: Range<usize>,
    /// `rows.len()` over the minibatch's rows: the weight of this shard's row-mean loss.
    pub weight: f64,
    /// The device's index among the run's, 0 being the main one (where the networks and the
    /// batch live).
    pub device: usize,
}

impl<E> Shard<'_, E> {
    /// `module` on this shard's device. Its parameters keep their ids, so their gradients
    /// reach the optimizer of the original; they are keyed by the copy's tensors, so the copy
    /// goes back with them ([`crate::optim::Trained::step_sharded`]).
    pub fn local<B: AutodiffBackend, M: AutodiffModule<B>>(&self, module: &M) -> M
    where
        E: DiffusionEnv<B>,
    {
        if self.device == 0 {
            module.clone()
        } else {
            module.clone().fork(self.env.device())
        }
    }

    /// A frozen module of the inference backend (the model that sampled the epoch) on this
    /// shard's device.
    pub fn local_inner<B: AutodiffBackend, M: Module<B::InnerBackend>>(&self, module: &M) -> M
    where
        E: DiffusionEnv<B>,
    {
        if self.device == 0 {
            module.clone()
        } else {
            module.clone().to_device(self.env.infer().device())
        }
    }

    /// This shard's rows of `traj` (a batch on the main device), on this shard's device.
    pub fn rows_of<B: AutodiffBackend>(&self, traj: &Trajectory<B>) -> Trajectory<B>
    where
        E: DiffusionEnv<B>,
    {
        let rows = traj.select_rows(self.rows);
        if self.device == 0 {
            rows
        } else {
            rows.to_device(self.env.device())
        }
    }
}

/// What [`Context::backward_sharded`] returns: each shard's gradients (on its device) and
/// what its loss function returned besides the loss, with the shard's weight.
pub struct ShardedGrads<B: AutodiffBackend, T> {
    pub grads: Vec<B::Gradients>,
    pub parts: Vec<(f64, T)>,
}

impl<B: AutodiffBackend, T> ShardedGrads<B, T> {
    /// The minibatch's value of a row mean each shard computed on its rows.
    pub fn mean(&self, f: impl Fn(&T) -> f64) -> f64 {
        self.parts.iter().map(|(w, t)| w * f(t)).sum()
    }
}

impl<'a, B: AutodiffBackend, E: DiffusionEnv<B>> Context<'a, B, E> {
    /// The run's environment on each of its devices, the main one first.
    pub fn devices(&self) -> Vec<&'a E> {
        std::iter::once(self.env)
            .chain(self.replicas.iter().copied())
            .collect()
    }

    /// Gradients of a row-mean loss over the minibatch `rows`, computed by `loss` shard by
    /// shard on the run's devices (one shard on one device: `loss` on all rows, unweighted).
    /// `loss` must be a mean over its shard's rows of per-row terms (no statistic across
    /// rows): the weighted sum of the shards' losses is then the minibatch's. The shards are
    /// queued in turn; asynchronous devices (CUDA) compute them concurrently, so `loss` should
    /// return tensors, read only after every shard is queued.
    pub fn backward_sharded<T>(
        &self,
        rows: &[usize],
        loss: impl Fn(&Shard<'_, E>) -> (Tensor<B, 1>, T),
    ) -> ShardedGrads<B, T> {
        let shards = self.shards(rows);
        weighted_backward(&shards, shards.iter().map(loss))
    }

    /// [`Context::backward_sharded`] for a loss that needs a statistic across the whole
    /// minibatch of values its shards compute (DAG-KL's leave-one-out advantages of the
    /// residuals): `forward` runs on every shard (its graph kept), `across` sees every
    /// shard's result in row order and returns one value per shard, and `finish` turns a
    /// shard's result and its value into the shard's row-mean loss. With one shard, as
    /// [`Context::backward_sharded`]. The statistic reads values back: the devices' forward
    /// passes run together, their backward passes after.
    pub fn backward_sharded_with<F, S, T>(
        &self,
        rows: &[usize],
        forward: impl Fn(&Shard<'_, E>) -> F,
        across: impl FnOnce(&[F]) -> Vec<S>,
        finish: impl Fn(&Shard<'_, E>, F, S) -> (Tensor<B, 1>, T),
    ) -> ShardedGrads<B, T> {
        let shards = self.shards(rows);
        let results: Vec<F> = shards.iter().map(&forward).collect();
        let values = across(&results);
        assert_eq!(values.len(), shards.len(), "one value per shard");
        let losses = shards
            .iter()
            .zip(results.into_iter().zip(values))
            .map(|(shard, (result, value))| finish(shard, result, value));
        weighted_backward(&shards, losses)
    }

    /// `rows` split over the run's devices (no more shards than rows), the main one first.
    fn shards<'r>(&self, rows: &'r [usize]) -> Vec<Shard<'r, E>>
    where
        'a: 'r,
    {
        let envs = self.devices();
        shard_rows(rows.len(), envs.len())
            .into_iter()
            .enumerate()
            .map(|(i, range)| Shard {
                env: envs[i],
                weight: range.len() as f64 / rows.len() as f64,
                rows: &rows[range.clone()],
                positions: range,
                device: i,
            })
            .collect()
    }
}

/// Each shard's loss weighted by its share of the rows (one shard: as it is), backpropagated.
fn weighted_backward<B: AutodiffBackend, E, T>(
    shards: &[Shard<'_, E>],
    losses: impl Iterator<Item = (Tensor<B, 1>, T)>,
) -> ShardedGrads<B, T> {
    let single = shards.len() == 1;
    let mut out = ShardedGrads {
        grads: Vec::with_capacity(shards.len()),
        parts: Vec::with_capacity(shards.len()),
    };
    for (shard, (l, t)) in shards.iter().zip(losses) {
        let l = if single {
            l
        } else {
            l.mul_scalar(shard.weight)
        };
        out.grads.push(l.backward());
        out.parts.push((shard.weight, t));
    }
    out
}
