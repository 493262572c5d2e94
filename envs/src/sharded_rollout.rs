//! Data-parallel sampling: one batch of trajectories rolled out in row shards, each shard on
//! its own device with its own copy of the model, drawing exactly the noise a single device
//! would — so a run on several devices samples what it samples on one, up to float reduction
//! order.

use std::ops::Range;

use burn::module::Module;
use burn::tensor::{backend::Backend, Tensor, TensorData};
use rand::rngs::StdRng;

use crate::env::{Denoiser, DiffusionModel};
use crate::rollout::{normal_data, Trajectory};

/// Contiguous row ranges splitting `n` rows over `parts` shards as evenly as possible (the
/// first `n mod parts` one row longer); empty shards are left out.
#[must_use]
pub fn shard_rows(n: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.max(1);
    let (base, extra) = (n / parts, n % parts);
    let mut start = 0;
    (0..parts)
        .map(|i| {
            let len = base + usize::from(i < extra);
            let r = start..start + len;
            start += len;
            r
        })
        .filter(|r| !r.is_empty())
        .collect()
}

/// One shard of a sharded rollout: a model (on its device), the denoiser to run on it, and
/// the prompt of each of its rows.
pub struct RolloutShard<'a, M, P> {
    pub model: &'a M,
    pub net: Denoiser<'a, P>,
    pub prompts: Vec<usize>,
}

/// [`crate::rollout`] of the shards' rows in turn, each shard on its model's device, in lock
/// step: the noise of every step is drawn for the whole batch, in the order one
/// device draws it, and split by rows. The shards' work is queued device by device within a
/// step; on asynchronous devices (CUDA) they compute concurrently. Returns each shard's
/// trajectories, on its device.
///
/// # Panics
/// Shards whose models differ in dimensions or number of steps.
pub fn rollout_sharded<B: Backend, M: DiffusionModel<B>>(
    shards: Vec<RolloutShard<'_, M, M::Policy>>,
    rng: &mut StdRng,
) -> Vec<Trajectory<B>> {
    let Some(first) = shards.first() else {
        return Vec::new();
    };
    let (dims, steps) = (first.model.dims(), first.model.scheduler().num_steps());
    assert!(shards
        .iter()
        .all(|s| s.model.dims() == dims && s.model.scheduler().num_steps() == steps));
    let n: usize = shards.iter().map(|s| s.prompts.len()).sum();
    // Whole-batch noise, cut into the shards' rows on their devices.
    let draw = |rng: &mut StdRng| -> Vec<Tensor<B, 2>> {
        let data = normal_data(n * dims, rng);
        let mut start = 0;
        shards
            .iter()
            .map(|s| {
                let rows = s.prompts.len();
                let part = data[start * dims..(start + rows) * dims].to_vec();
                start += rows;
                Tensor::from_data(TensorData::new(part, [rows, dims]), s.model.device())
            })
            .collect()
    };
    let mut trajectories: Vec<Trajectory<B>> = draw(rng)
        .into_iter()
        .zip(&shards)
        .map(|(x, s)| Trajectory {
            prompts: s.prompts.clone(),
            states: vec![x],
            log_probs: Vec::with_capacity(steps),
        })
        .collect();
    for k in 0..steps {
        let noise = draw(rng);
        for ((s, t), noise) in shards.iter().zip(&mut trajectories).zip(noise) {
            let x = t.states[k].clone();
            let transition = s
                .model
                .transition(s.net, x, &vec![k; s.prompts.len()], &s.prompts);
            let next = transition.sample(noise);
            t.log_probs
                .push(transition.log_prob(next.clone(), s.model.scheduler().reduction()));
            t.states.push(next);
        }
    }
    trajectories
}

/// [`crate::rollout`] of `prompts` spread by rows over `models` (the same model on each
/// device, the first gathering the result): each further device gets its own copy of the
/// policy. Equal to `rollout` on the first model up to float reduction order; on one model it
/// is `rollout`.
///
/// # Panics
/// `models` is empty.
pub fn rollout_spread<B: Backend, M: DiffusionModel<B>>(
    models: &[&M],
    net: Denoiser<'_, M::Policy>,
    prompts: Vec<usize>,
    rng: &mut StdRng,
) -> Trajectory<B> {
    let main = models[0];
    if models.len() == 1 {
        return crate::rollout(main, net, prompts, rng);
    }
    let ranges = shard_rows(prompts.len(), models.len());
    let copies: Vec<Option<M::Policy>> = models
        .iter()
        .take(ranges.len())
        .enumerate()
        .map(|(i, m)| match net {
            Denoiser::Policy(p) if i > 0 => Some(p.clone().to_device(m.device())),
            _ => None,
        })
        .collect();
    let shards = ranges
        .into_iter()
        .zip(models.iter().zip(&copies))
        .map(|(rows, (model, copy))| RolloutShard {
            model: *model,
            net: copy.as_ref().map_or(net, Denoiser::Policy),
            prompts: prompts[rows].to_vec(),
        })
        .collect();
    Trajectory::cat(
        rollout_sharded(shards, rng)
            .iter()
            .map(|t| t.to_device(main.device()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_row_once_in_order() {
        for n in 0..12 {
            for parts in 1..6 {
                let shards = shard_rows(n, parts);
                let rows: Vec<usize> = shards.iter().flat_map(Clone::clone).collect();
                assert_eq!(rows, (0..n).collect::<Vec<_>>(), "n {n} parts {parts}");
                assert!(shards.len() <= parts);
                let lens: Vec<usize> = shards.iter().map(ExactSizeIterator::len).collect();
                assert!(lens.iter().max().unwrap_or(&0) - lens.iter().min().unwrap_or(&0) <= 1);
            }
        }
    }
}
