//! Exact GELU, `x·Φ(x) = x·(1 + erf(x/√2))/2`, with its exact gradient on every backend.
//!
//! burn's `activation::gelu` computes the exact function everywhere, but its backward pass
//! calls the backend's `gelu_backward`, whose default (burn 0.21's `ActivationOps`) is the
//! derivative of the *tanh approximation*. Only burn-flex, burn-tch and burn-dispatch override
//! it; the CUDA backend (cubecl) and ndarray use the default, so on a GPU the gradients of
//! every GELU network (the UNet's GEGLU under LoRA training, the CLIP/ViT/BERT reward towers
//! under ReFL, DRaFT and ∇-GFlowNet) would differ from PyTorch's, whose backward is exact.
//!
//! Where it matters (an autodiff backend whose `gelu_backward` is not known to be exact),
//! [`gelu`] composes the function from `erf`, whose backward (2/√π·e^(−x²)) is exact in burn's
//! autodiff on every backend. Elsewhere it is burn's fused op: on inference backends there is
//! no backward, and on autodiff-over-flex the fused backward is exact. On the CPU (burn-flex and
//! autodiff over it) it is [`crate::flex_kernels`]' vectorised pass, with its exact backward.

use burn::tensor::activation;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::flex_kernels;

/// Inner backends (by [`Backend::name`]) whose `gelu_backward` is the exact derivative in
/// burn 0.21. Any other backend gets the composed form: never wrong, at worst a little slower.
const EXACT_GELU_BACKWARD: [&str; 2] = ["autodiff<flex>", "autodiff<libtorch"];

/// Exact GELU whose gradient is exact whatever the backend (see the module doc).
pub fn gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let x = match flex_kernels::gelu(x) {
        Ok(y) => return y,
        Err(x) => x,
    };
    if needs_composed_backward::<B>(&x.device()) {
        composed(x)
    } else {
        activation::gelu(x)
    }
}

/// `x·(1 + erf(x/√2))/2` from elementary ops, so that autodiff differentiates it exactly.
fn composed<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let phi = x
        .clone()
        .div_scalar(std::f64::consts::SQRT_2)
        .erf()
        .add_scalar(1.0);
    x.mul(phi).mul_scalar(0.5)
}

/// True on an autodiff backend whose inner `gelu_backward` is the tanh approximation's.
fn needs_composed_backward<B: Backend>(device: &B::Device) -> bool {
    if !B::ad_enabled(device) {
        return false;
    }
    let name = B::name(device);
    !EXACT_GELU_BACKWARD
        .iter()
        .any(|exact| name.starts_with(exact))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Autodiff;
    use burn_flex::Flex;
    use burn_ndarray::NdArray;

    /// The composed form is the same function as burn's fused op (to f32 rounding).
    #[test]
    fn composed_form_equals_burns_gelu() {
        let device = Default::default();
        let values: Vec<f32> = (-80..=80).map(|i| i as f32 / 10.0).collect();
        let x = Tensor::<Flex, 1>::from_floats(values.as_slice(), &device);
        let fused = activation::gelu(x.clone()).into_data();
        let ours = composed(x).into_data();
        fused.assert_approx_eq::<f32>(&ours, burn::tensor::Tolerance::absolute(1e-6));
    }

    /// On autodiff-over-flex the fused op is kept (its backward is exact there); on the inner
    /// backend there is no backward to worry about.
    #[test]
    fn fused_op_kept_where_its_backward_is_exact() {
        let device = Default::default();
        assert!(!needs_composed_backward::<Flex>(&device));
        assert!(!needs_composed_backward::<Autodiff<Flex>>(&device));
        assert!(needs_composed_backward::<Autodiff<NdArray>>(
            &Default::default()
        ));
    }

    /// Φ(x) + x·φ(x), the exact derivative, in f64.
    fn exact_derivative(x: f64) -> f64 {
        let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let cdf = 0.5 * (1.0 + statrs::function::erf::erf(x / std::f64::consts::SQRT_2));
        cdf + x * pdf
    }

    fn gradient<B: burn::tensor::backend::AutodiffBackend>(
        values: &[f32],
        f: impl Fn(Tensor<B, 1>) -> Tensor<B, 1>,
    ) -> Vec<f32> {
        let device = Default::default();
        let x = Tensor::<B, 1>::from_floats(values, &device).require_grad();
        let grads = f(x.clone()).sum().backward();
        x.grad(&grads).unwrap().into_data().to_vec().unwrap()
    }

    /// ndarray keeps burn's default `gelu_backward` (the tanh approximation's derivative), as
    /// the CUDA backend does: there [`gelu`]'s gradient must still be the exact derivative,
    /// and burn's fused op's is not (which is why the composed form exists).
    #[test]
    fn gradient_is_exact_on_a_backend_with_the_approximate_backward() {
        let values: Vec<f32> = (-60..=60).map(|i| i as f32 / 10.0).collect();
        let max_error = |grad: &[f32]| {
            values
                .iter()
                .zip(grad)
                .map(|(&x, &g)| (g as f64 - exact_derivative(x as f64)).abs())
                .fold(0.0, f64::max)
        };
        let ours = max_error(&gradient::<Autodiff<NdArray>>(&values, gelu));
        let burns = max_error(&gradient::<Autodiff<NdArray>>(&values, activation::gelu));
        let flex = max_error(&gradient::<Autodiff<Flex>>(&values, gelu));
        assert!(ours < 1e-6, "ndarray, composed: {ours:e}");
        assert!(flex < 1e-6, "flex, fused: {flex:e}");
        assert!(
            burns > 1e-4,
            "burn's default backward is exact now ({burns:e}): drop the composed form"
        );
    }
}
