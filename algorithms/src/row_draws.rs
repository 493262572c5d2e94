//! One device's window onto the randomness of a whole batch: every draw is made for all of the
//! batch's rows, in the order one device makes it, and only this device's rows are kept. A
//! batch split over devices then sees exactly the noise one device would (each device replays
//! the whole batch's draws from the same starting state; host draws are cheap beside the
//! networks they feed).

use std::ops::Range;

use burn::tensor::{backend::Backend, Tensor, TensorData};
use rand::rngs::StdRng;

use bench_envs::{normal_data, normal_tensor};

/// Draws for rows `rows` of a batch of `whole` rows.
pub struct RowDraws<'r> {
    rng: &'r mut StdRng,
    whole: usize,
    rows: Range<usize>,
}

impl<'r> RowDraws<'r> {
    /// # Panics
    /// `rows` reaching past the batch.
    pub fn new(rng: &'r mut StdRng, whole: usize, rows: Range<usize>) -> Self {
        assert!(rows.end <= whole, "rows {rows:?} of a batch of {whole}");
        Self { rng, whole, rows }
    }

    /// Every row of a batch of `n`: plain draws from `rng`.
    pub fn all(rng: &'r mut StdRng, n: usize) -> Self {
        Self::new(rng, n, 0..n)
    }

    /// The rows kept.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Standard normal `[rows, dims]` on `device`: this window's rows of a whole-batch
    /// [`normal_tensor`].
    pub fn normal<B: Backend>(&mut self, dims: usize, device: &B::Device) -> Tensor<B, 2> {
        if self.rows == (0..self.whole) {
            return normal_tensor(self.whole, dims, self.rng, device);
        }
        let data = normal_data(self.whole * dims, self.rng);
        let kept = data[self.rows.start * dims..self.rows.end * dims].to_vec();
        Tensor::from_data(TensorData::new(kept, [self.rows.len(), dims]), device)
    }

    /// One value per row, `draw` called for every row of the batch in order.
    pub fn per_row<T>(&mut self, mut draw: impl FnMut(&mut StdRng) -> T) -> Vec<T> {
        let all: Vec<T> = (0..self.whole).map(|_| draw(self.rng)).collect();
        all.into_iter()
            .skip(self.rows.start)
            .take(self.rows.len())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use rand::{Rng, SeedableRng};

    #[test]
    fn windows_of_a_batch_cut_one_devices_draws_and_leave_the_rng_alike() {
        let device = Default::default();
        let draw = |rows: Range<usize>| {
            let mut rng = StdRng::seed_from_u64(3);
            let mut d = RowDraws::new(&mut rng, 5, rows);
            let z = d
                .normal::<Flex>(2, &device)
                .into_data()
                .to_vec::<f32>()
                .unwrap();
            let u = d.per_row(|r| r.random_range(0..1000u32));
            let w = d
                .normal::<Flex>(3, &device)
                .into_data()
                .to_vec::<f32>()
                .unwrap();
            (z, u, w, rng.random::<u64>())
        };
        let whole = draw(0..5);
        let (a, b) = (draw(0..2), draw(2..5));
        assert_eq!([a.0, b.0].concat(), whole.0);
        assert_eq!([a.1, b.1].concat(), whole.1);
        assert_eq!([a.2, b.2].concat(), whole.2);
        // Every window leaves the generator where one device leaves it.
        assert_eq!((a.3, b.3), (whole.3, whole.3));
        // And the whole batch is plain sequential drawing.
        let mut rng = StdRng::seed_from_u64(3);
        let plain = normal_tensor::<Flex>(5, 2, &mut rng, &device);
        assert_eq!(plain.into_data().to_vec::<f32>().unwrap(), whole.0);
    }
}
