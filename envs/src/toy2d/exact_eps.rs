//! The exact ε-prediction of a noised Gaussian mixture, in burn tensors (so that it batches
//! with the adapter and is differentiable in x).
//!
//! For x_t = √ᾱ·x₀ + √(1−ᾱ)·ε with x₀ from Σ_k w_k N(μ_k, s_k² I), the marginal is
//! Σ_k w_k N(√ᾱ μ_k, v_k I) with v_k = ᾱ s_k² + 1 − ᾱ, and
//! E[ε | x_t] = −√(1−ᾱ)·∇log p_t(x_t) = √(1−ᾱ)·Σ_k γ_k(x_t)·(x_t − √ᾱ μ_k)/v_k.

use burn::tensor::{backend::Backend, Int, Tensor, TensorData};

use bench_models::GaussianMixture;

/// Mixtures padded to a common number of components: one table row per condition, the last
/// row being the unconditional model (the equal-weight union of all scenes).
#[derive(Clone, Debug)]
pub struct ExactEps<B: Backend> {
    means: Tensor<B, 3>,
    variances: Tensor<B, 2>,
    log_weights: Tensor<B, 2>,
}

/// Log-weight of padding components: far below any real one, finite so softmax stays exact.
const ABSENT: f32 = -1.0e9;

impl<B: Backend> ExactEps<B> {
    pub fn new(scenes: &[GaussianMixture], device: &B::Device) -> Self {
        let mut rows: Vec<GaussianMixture> = scenes.to_vec();
        rows.push(GaussianMixture::union(scenes));
        let k = rows.iter().map(|m| m.len()).max().unwrap_or(1);
        let (mut means, mut vars, mut logw) = (Vec::new(), Vec::new(), Vec::new());
        for m in &rows {
            for i in 0..k {
                match m.components().get(i) {
                    Some(c) => {
                        means.extend([c.mean[0] as f32, c.mean[1] as f32]);
                        vars.push((c.std * c.std) as f32);
                        logw.push(c.weight.ln() as f32);
                    }
                    None => {
                        means.extend([0.0, 0.0]);
                        vars.push(1.0);
                        logw.push(ABSENT);
                    }
                }
            }
        }
        let r = rows.len();
        Self {
            means: Tensor::from_data(TensorData::new(means, [r, k, 2]), device),
            variances: Tensor::from_data(TensorData::new(vars, [r, k]), device),
            log_weights: Tensor::from_data(TensorData::new(logw, [r, k]), device),
        }
    }

    /// ε for rows `x [N, 2]` at signal levels `alpha_bars`, conditioned on table rows `rows`.
    pub fn eps(&self, x: Tensor<B, 2>, alpha_bars: &[f64], rows: &[usize]) -> Tensor<B, 2> {
        let device = x.device();
        let n = rows.len();
        let idx: Tensor<B, 1, Int> = Tensor::from_data(
            TensorData::new(rows.iter().map(|&r| r as i64).collect::<Vec<_>>(), [n]),
            &device,
        );
        let col = |f: &dyn Fn(f64) -> f64| -> Tensor<B, 2> {
            let v: Vec<f32> = alpha_bars.iter().map(|&a| f(a) as f32).collect();
            Tensor::from_data(TensorData::new(v, [n, 1]), &device)
        };
        let a = col(&|a| a);
        let sqrt_a = col(&|a| a.sqrt());
        let sqrt_1ma = col(&|a| (1.0 - a).sqrt());

        let means = self.means.clone().select(0, idx.clone()); // [N, K, 2]
        let k = means.dims()[1];
        let diff = x.unsqueeze_dim::<3>(1) - means * sqrt_a.unsqueeze_dim::<3>(2); // [N, K, 2]
        let var = self.variances.clone().select(0, idx.clone()) * a.clone() - a + 1.0; // [N, K]
        let d2 = diff.clone().powi_scalar(2).sum_dim(2).reshape([n, k]);
        let logits = self.log_weights.clone().select(0, idx)
            - d2.div(var.clone()).mul_scalar(0.5)
            - var.clone().log();
        let weights = softmax_rows(logits) / var; // γ_k / v_k
        let eps = (diff * weights.unsqueeze_dim::<3>(2))
            .sum_dim(1)
            .reshape([n, 2]);
        eps * sqrt_1ma
    }
}

/// Softmax over each row, written out as burn's default composition (max-shift, exp, sum,
/// divide) rather than `activation::softmax`: the CPU backend's fused kernel rounds differently
/// from that composition, which is what the autodiff backend runs, and the toy's model on the
/// inference backend must compute ε bit for bit as the training one does (runs replay exactly,
/// whichever backend a computation happens on).
fn softmax_rows<B: Backend>(logits: Tensor<B, 2>) -> Tensor<B, 2> {
    let max = logits.clone().detach().max_dim(1);
    let exp = (logits - max).exp();
    exp.clone() / exp.sum_dim(1)
}
