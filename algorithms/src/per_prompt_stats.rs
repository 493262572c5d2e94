//! DDPO's per-prompt reward normalisation: each prompt keeps a buffer of its recent rewards;
//! until it holds `min_count` of them the whole batch's statistics are used instead.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PerPromptStats {
    buffer_size: usize,
    min_count: usize,
    buffers: BTreeMap<String, VecDeque<f64>>,
}

fn mean_std(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let values: Vec<f64> = values.collect();
    (
        bench_core::stats::mean(&values),
        bench_core::stats::population_std(&values),
    )
}

impl PerPromptStats {
    pub fn new(buffer_size: usize, min_count: usize) -> Self {
        Self {
            buffer_size,
            min_count,
            buffers: BTreeMap::new(),
        }
    }

    /// Adds the batch's rewards and returns their advantages `(r − mean)/(std + 1e-6)`.
    pub fn update(&mut self, prompts: &[String], rewards: &[f64]) -> Vec<f64> {
        self.advantages(prompts, rewards, true)
    }

    /// As [`PerPromptStats::update`] without the division by the std: `r − mean`, an unbiased
    /// baseline that leaves the objective's scale alone.
    pub fn centre(&mut self, prompts: &[String], rewards: &[f64]) -> Vec<f64> {
        self.advantages(prompts, rewards, false)
    }

    fn advantages(&mut self, prompts: &[String], rewards: &[f64], scale: bool) -> Vec<f64> {
        let batch = mean_std(rewards.iter().copied());
        let mut advantages = vec![0.0; rewards.len()];
        let mut unique: Vec<&String> = prompts.iter().collect();
        unique.sort();
        unique.dedup();
        for prompt in unique {
            let rows: Vec<usize> = (0..prompts.len())
                .filter(|&i| &prompts[i] == prompt)
                .collect();
            let buffer = self.buffers.entry(prompt.clone()).or_default();
            for &i in &rows {
                buffer.push_back(rewards[i]);
                if buffer.len() > self.buffer_size {
                    buffer.pop_front();
                }
            }
            let (mean, std) = if buffer.len() < self.min_count {
                batch
            } else {
                mean_std(buffer.iter().copied())
            };
            for &i in &rows {
                let centred = rewards[i] - mean;
                advantages[i] = if scale {
                    centred / (std + 1e-6)
                } else {
                    centred
                };
            }
        }
        advantages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_batch_statistics_until_a_prompt_has_min_count_rewards() {
        let mut s = PerPromptStats::new(4, 3);
        let prompts: Vec<String> = ["a", "a", "b", "b"].iter().map(|s| s.to_string()).collect();
        let adv = s.update(&prompts, &[1.0, 3.0, 5.0, 7.0]);
        // Batch mean 4, std √5.
        assert!((adv[0] - (1.0 - 4.0) / (5f64.sqrt() + 1e-6)).abs() < 1e-9);
        let adv = s.update(&prompts, &[2.0, 2.0, 6.0, 6.0]);
        // Prompt "a" now holds [1, 3, 2, 2]: mean 2, std √0.5.
        assert!((adv[0] - 0.0).abs() < 1e-9);
        let adv = s.update(&prompts[..1], &[4.0]);
        // Buffer of size 4 drops the oldest: [3, 2, 2, 4].
        let (m, sd) = (
            2.75,
            (0.0625 + 0.5625 + 0.5625 + 1.5625f64 / 1.0).sqrt() / 2.0,
        );
        assert!((adv[0] - (4.0 - m) / (sd + 1e-6)).abs() < 1e-9);
    }
}
