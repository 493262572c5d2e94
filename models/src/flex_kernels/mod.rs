//! Fused, vectorised CPU kernels for burn-flex and autodiff over it (the CPU inference and
//! training backends), where burn-flex 0.21's own ops are the measured bottleneck of a rollout
//! and of a LoRA training step.
//!
//! burn-flex runs `exp`, `sigmoid` and `erf` as scalar libm calls on one thread
//! (`unary_op`), and a group norm composed of burn ops takes nine passes over the activations,
//! each allocating its output. In a tiny-SD rollout libm's `expf` alone was 17–20 % of the
//! time (`perf`, SiLU after every group norm) and `erff` 5 %. PyTorch runs these as one
//! vectorised kernel each (Sleef `exp`, `native_group_norm`). The kernels here do the same on
//! slices of the tensor's storage:
//!
//! - [`group_norm`] (optionally followed by SiLU): two-pass statistics per group in f64, then
//!   one pass that normalises, scales, shifts and applies SiLU;
//! - [`silu`], [`gelu`] (exact, erf-based) and CLIP's [`quick_gelu`], elementwise;
//! - [`contiguous`]: permuted views copied by runs or tiles, not element by element;
//! - [`softmax_last`] (burn-flex's fused softmax calls the scalar `exp` per element);
//! - [`attention()`]: multi-head attention per block of queries, scores never materialised beyond
//!   the block, straight from the projections' layout (burn-flex's fused attention runs one head
//!   at a time on one thread);
//! - [`conv2d()`]: one matrix product per image (im2col in tiles), and at stride 1 the input
//!   gradient as the same kernel on the flipped weights (burn-flex's is a scalar col2im);
//! - [`linear()`]: burn's `Linear` as one matrix product over all rows, the bias accumulated
//!   onto (burn-flex runs one single-threaded product per batch item, then adds the bias), and
//!   its gradients as two products and a sum over the rows;
//! - [`max_pool2d`] and [`avg_pool2d`]: two passes per plane, planes in parallel (burn-flex
//!   pools through its 3-D path with a closure call per tap); inference only.
//!
//! They apply where `B` is burn-flex, or autodiff over it (each kernel then recorded as one
//! operation with its own backward pass, `autodiff.rs`), and the tensor is f32; everything else
//! (CUDA, half precision, other backends) gets the tensor back (`Err`) and the networks use
//! burn's ops. The choice is a type check (`dispatch.rs`), so model code stays generic. The
//! results equal burn's to float rounding (unit tests, gradients included; the parity tests
//! against diffusers run through these kernels).

mod attention;
mod autodiff;
mod conv;
mod dispatch;
mod group_norm;
mod layout_copy;
mod linear;
mod matrix_product;
mod pool;
mod softmax;
mod vector_math;

/// Below this many elements a kernel runs on the calling thread: waking rayon's workers costs
/// more than the work (a tiny-SD group norm has 16K elements).
const PARALLEL_MIN: usize = 1 << 16;

pub use vector_math::QUICK_GELU_SLOPE;

use autodiff::tracked_f32;
use burn::tensor::{backend::Backend, Tensor};
use dispatch::{
    flex_f32, flex_f32_as_laid_out, from_shape, from_values, into_tensor, is_flex_f32,
    readable_as_rows, row_major, values,
};

/// `x` laid out in row-major order (a view after `swap_dims` copied), so that a `reshape`
/// after it is free: on burn-flex by runs or tiles ([`layout_copy`]), elsewhere `x` itself
/// (the backend copies in `reshape` where it must).
pub fn contiguous<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let x = match flex_f32(x) {
        Ok(t) => return into_tensor(t),
        Err(x) => x,
    };
    match tracked_f32(x) {
        Ok((strategy, t)) => into_tensor(autodiff::contiguous(strategy, t)),
        Err(x) => x,
    }
}

/// SiLU on burn-flex and autodiff over it (with its backward pass); `Err(x)` on any other
/// backend or dtype.
pub fn silu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Result<Tensor<B, D>, Tensor<B, D>> {
    recorded_elementwise(x, autodiff::SILU)
}

/// Exact GELU on burn-flex and autodiff over it (with its exact backward pass); `Err(x)` on
/// any other backend or dtype.
pub fn gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Result<Tensor<B, D>, Tensor<B, D>> {
    recorded_elementwise(x, autodiff::GELU)
}

/// `x·weight + bias` over the last dimension of `x` (burn's `Linear`: `weight` `[d_in, d_out]`,
/// `bias` `[d_out]`) on burn-flex, and with its backward pass on autodiff over it, where `x`,
/// `weight` and `bias` are all f32 tensors of one of these; `Err(x)` otherwise (other
/// backends and dtypes, shapes that do not fit: burn's `linear` then runs, and reports a shape
/// error as it always did).
pub fn linear<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    weight: &Tensor<B, 2>,
    bias: Option<&Tensor<B, 1>>,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    let [d_in, d_out] = weight.dims();
    let dims = x.dims();
    let fits = D >= 1
        && dims[D - 1] == d_in
        && d_in > 0
        && d_out > 0
        && x.shape().num_elements().checked_mul(d_out).is_some()
        && bias.is_none_or(|b| b.dims() == [d_out]);
    if !fits {
        return Err(x);
    }
    // Clones share the parameters' storage: not copied, unless laid out in a way the
    // product cannot read (rows of adjacent columns).
    if is_flex_f32(&x) && is_flex_f32(weight) && bias.is_none_or(is_flex_f32) {
        let weight = flex_f32_as_laid_out(weight.clone()).expect("checked above");
        let bias = bias.map(|b| flex_f32(b.clone()).expect("checked above"));
        let x = flex_f32(x).expect("checked above");
        let out = linear::linear_of_tensors(&x, &readable_as_rows(weight), bias.as_ref());
        return Ok(into_tensor(out));
    }
    let bias_tracked = bias.is_none_or(autodiff::is_tracked_f32::<B, 1>);
    if autodiff::is_tracked_f32(&x) && autodiff::is_tracked_f32(weight) && bias_tracked {
        let (strategy, x) = tracked_f32(x).expect("checked above");
        let (_, weight) = tracked_f32(weight.clone()).expect("checked above");
        let bias = bias.map(|b| tracked_f32(b.clone()).expect("checked above").1);
        let op = autodiff::Linear { d_in, d_out };
        return Ok(into_tensor(autodiff::linear(strategy, x, weight, bias, op)));
    }
    Err(x)
}

/// CLIP's QuickGELU, `x·σ(1.702·x)`, on burn-flex and autodiff over it (with its backward
/// pass); `Err(x)` on any other backend or dtype.
pub fn quick_gelu<B: Backend, const D: usize>(
    x: Tensor<B, D>,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    recorded_elementwise(x, autodiff::QUICK_GELU)
}

fn recorded_elementwise<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    f: autodiff::Elementwise,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    let x = match elementwise(x, f.forward) {
        Ok(y) => return Ok(y),
        Err(x) => x,
    };
    let (strategy, t) = tracked_f32(x)?;
    Ok(into_tensor(autodiff::elementwise(strategy, f, t)))
}

/// Softmax over the last dimension on burn-flex and autodiff over it (with its backward
/// pass); `Err(x)` on any other backend or dtype.
pub fn softmax_last<B: Backend, const D: usize>(
    x: Tensor<B, D>,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    let row_len = x.dims()[D - 1];
    let x = match elementwise(x, |values| softmax::softmax_rows(values, row_len)) {
        Ok(y) => return Ok(y),
        Err(x) => x,
    };
    let (strategy, t) = tracked_f32(x)?;
    Ok(into_tensor(autodiff::softmax_last(strategy, t)))
}

/// Group norm of `x` `[N, C, H, W]` (biased variance, `eps` inside the root, as torch's), with
/// `gamma` and `beta` per channel when given, then SiLU when `silu`; on burn-flex, and with
/// its backward pass on autodiff over it when the affine is given; `Err(x)` elsewhere.
pub fn group_norm<B: Backend>(
    x: Tensor<B, 4>,
    groups: usize,
    affine: Option<(Tensor<B, 1>, Tensor<B, 1>)>,
    eps: f64,
    silu: bool,
) -> Result<Tensor<B, 4>, Tensor<B, 4>> {
    // Shapes the kernel cannot normalise are handed back (burn's ops then report them).
    let channels = x.dims()[1];
    let affine_fits = affine
        .as_ref()
        .is_none_or(|(gamma, beta)| gamma.dims() == [channels] && beta.dims() == [channels]);
    if groups == 0 || !channels.is_multiple_of(groups) || !affine_fits {
        return Err(x);
    }
    let x = match flex_f32(x) {
        Ok(x) => {
            let values = |p: Tensor<B, 1>| p.into_data().iter::<f32>().collect::<Vec<f32>>();
            let affine = affine.map(|(gamma, beta)| (values(gamma), values(beta)));
            let affine = affine
                .as_ref()
                .map(|(gamma, beta)| group_norm::Affine { gamma, beta });
            return Ok(into_tensor(group_norm::group_norm(
                x, groups, affine, eps, silu,
            )));
        }
        Err(x) => x,
    };
    let Some((gamma, beta)) = affine else {
        return Err(x);
    };
    let (strategy, x) = tracked_f32(x)?;
    let (Ok((_, gamma)), Ok((_, beta))) = (tracked_f32(gamma), tracked_f32(beta)) else {
        return Err(into_tensor(x));
    };
    let input = row_major(x.primitive.clone());
    let (g, b) = (
        row_major(gamma.primitive.clone()),
        row_major(beta.primitive.clone()),
    );
    let values_affine = group_norm::Affine {
        gamma: values(&g),
        beta: values(&b),
    };
    let output = group_norm::group_norm(input.clone(), groups, Some(values_affine), eps, silu);
    let op = autodiff::GroupNorm { groups, eps, silu };
    let tracked = autodiff::record(strategy, op, [&x, &gamma, &beta], (input, g, b), output);
    Ok(into_tensor(tracked))
}

/// Multi-head attention `softmax(scale·q·kᵀ)·v` of projected queries `[N, Lq, heads·d]`
/// against keys `[N, Lk, heads·d]` and values `[N, Lk, heads·dv]`, heads concatenated in the
/// result `[N, Lq, heads·dv]`, the scores never materialised (`attention.rs`); on burn-flex
/// in f32, and with its backward pass on autodiff over it; `Err` with the three tensors on
/// any other backend or dtype.
#[allow(clippy::type_complexity)]
pub fn attention<B: Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    heads: usize,
    scale: f64,
) -> Result<Tensor<B, 3>, (Tensor<B, 3>, Tensor<B, 3>, Tensor<B, 3>)> {
    let ([n, lq, c], [kn, lk, kc], [vn, vk, cv]) = (q.dims(), k.dims(), v.dims());
    let fits = heads > 0
        && c > 0
        && lk > 0
        && (kn, kc, vn, vk) == (n, c, n, lk)
        && c.is_multiple_of(heads)
        && cv.is_multiple_of(heads);
    let shape = attention::Shape {
        n,
        lq,
        lk,
        heads,
        d: c / heads.max(1),
        dv: cv / heads.max(1),
        scale: scale as f32,
    };
    let qkv = [q, k, v];
    if fits && qkv.iter().all(is_flex_f32) {
        let [q, k, v] = qkv.map(|t| flex_f32(t).expect("checked above"));
        let out = attention::attention(values(&q), values(&k), values(&v), shape);
        return Ok(into_tensor(from_shape(out, [n, lq, cv])));
    }
    if fits && qkv.iter().all(autodiff::is_tracked_f32) {
        let tracked = qkv.map(|t| tracked_f32(t).expect("checked above"));
        let strategy = tracked[0].0;
        let out = autodiff::attention(strategy, tracked.map(|(_, t)| t), shape);
        return Ok(into_tensor(out));
    }
    let [q, k, v] = qkv;
    Err((q, k, v))
}

/// 2-D convolution of `x` `[N, C, H, W]` with `weight` `[Cout, C, kh, kw]` (one group, no
/// dilation), `bias` `[Cout]`, `stride` and zero `padding` per axis, as one matrix product per
/// image (`conv.rs`); on burn-flex in f32, and on autodiff over it at stride 1 with padding
/// below the kernel's size (the input gradient a convolution too); `Err` with the tensors
/// elsewhere and for shapes that do not fit.
#[allow(clippy::type_complexity)]
pub fn conv2d<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    stride: [usize; 2],
    padding: [usize; 2],
) -> Result<Tensor<B, 4>, (Tensor<B, 4>, Tensor<B, 4>, Option<Tensor<B, 1>>)> {
    let dims = x.dims();
    let [co, ci, kh, kw] = weight.dims();
    let conv = conv::Conv {
        channels_out: co,
        kernel: [kh, kw],
        stride,
        padding,
    };
    let fits = ci == dims[1]
        && conv.output_size([dims[2], dims[3]]).is_some()
        && bias.as_ref().is_none_or(|b| b.dims() == [co]);
    let all = |f: &dyn Fn(&Tensor<B, 4>) -> bool, g: &dyn Fn(&Tensor<B, 1>) -> bool| {
        f(&x) && f(&weight) && bias.as_ref().is_none_or(g)
    };
    if fits && all(&is_flex_f32, &is_flex_f32) {
        let [x, weight] = [x, weight].map(|t| flex_f32(t).expect("checked above"));
        let bias = bias.map(|b| flex_f32(b).expect("checked above"));
        let out = conv::conv2d(
            values(&x),
            dims,
            values(&weight),
            bias.as_ref().map(values),
            &conv,
        );
        let [ho, wo] = conv.output_size([dims[2], dims[3]]).expect("checked above");
        return Ok(into_tensor(from_shape(out, [dims[0], co, ho, wo])));
    }
    let backward_fits = stride == [1, 1] && padding[0] < kh && padding[1] < kw;
    if fits && backward_fits && all(&autodiff::is_tracked_f32, &autodiff::is_tracked_f32) {
        let (strategy, x) = tracked_f32(x).expect("checked above");
        let (_, weight) = tracked_f32(weight).expect("checked above");
        let bias = bias.map(|b| tracked_f32(b).expect("checked above").1);
        let op = autodiff::Convolution { conv, dims };
        return Ok(into_tensor(autodiff::conv2d(strategy, x, weight, bias, op)));
    }
    Err((x, weight, bias))
}

/// 2-D max pooling (floor mode, no dilation; NaN where a window holds one), on burn-flex f32
/// tensors (inference: nothing is recorded); `Err(x)` elsewhere, and where the window cannot
/// apply (padding above half the kernel, a kernel larger than the padded input, stride 0).
pub fn max_pool2d<B: Backend>(
    x: Tensor<B, 4>,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Result<Tensor<B, 4>, Tensor<B, 4>> {
    let window = pool::Window {
        kernel,
        stride,
        padding,
    };
    pool2d(x, &window, pool::Pool::Max)
}

/// 2-D average pooling (floor mode), dividing by the whole window (`count_include_pad`) or by
/// its taps inside the input; where it applies as [`max_pool2d`].
pub fn avg_pool2d<B: Backend>(
    x: Tensor<B, 4>,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    count_include_pad: bool,
) -> Result<Tensor<B, 4>, Tensor<B, 4>> {
    let window = pool::Window {
        kernel,
        stride,
        padding,
    };
    let average = pool::Pool::Average {
        count_padding: count_include_pad,
    };
    pool2d(x, &window, average)
}

fn pool2d<B: Backend>(
    x: Tensor<B, 4>,
    window: &pool::Window,
    kind: pool::Pool,
) -> Result<Tensor<B, 4>, Tensor<B, 4>> {
    let [n, c, h, w] = x.dims();
    let Some([ho, wo]) = window.output_size([h, w]) else {
        return Err(x);
    };
    let x = flex_f32(x)?;
    let out = pool::pool2d(values(&x), [n, c, h, w], window, kind);
    Ok(into_tensor(from_shape(out, [n, c, ho, wo])))
}

/// `kernel` over a copy of the tensor's elements, or over them in place when nothing else
/// holds its buffer.
fn elementwise<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    kernel: impl FnOnce(&mut [f32]),
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    let mut t = flex_f32(x)?;
    if let Some(values) = t.try_storage_mut::<f32>() {
        kernel(values);
        return Ok(into_tensor(t));
    }
    let mut copy = values(&t).to_vec();
    kernel(&mut copy);
    Ok(into_tensor(from_values(copy, &t)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::{activation, TensorData, Tolerance};
    use burn_ndarray::NdArray;

    fn tensor<const D: usize>(shape: [usize; D], scale: f32) -> Tensor<Flex, D> {
        let n = shape.iter().product();
        Tensor::from_data(TensorData::new(wave(n, scale), shape), &Default::default())
    }

    /// Each kernel against burn's op on the same tensor (burn's ops are what the parity tests
    /// tie to PyTorch), on a permuted view so that the layout copy is on the path.
    #[test]
    fn kernels_equal_burns_ops() {
        let x = tensor([2, 6, 70], 12.0).swap_dims(1, 2);
        let close = Tolerance::absolute(2e-6).set_relative(2e-6);
        let ours = silu(x.clone()).expect("flex").into_data();
        ours.assert_approx_eq::<f32>(&activation::silu(x.clone()).into_data(), close);
        let ours = gelu(x.clone()).expect("flex").into_data();
        ours.assert_approx_eq::<f32>(&activation::gelu(x.clone()).into_data(), close);
        let ours = quick_gelu(x.clone()).expect("flex").into_data();
        let burns = x.clone() * activation::sigmoid(x.clone() * QUICK_GELU_SLOPE);
        ours.assert_approx_eq::<f32>(&burns.into_data(), close);
        let ours = softmax_last(x.clone()).expect("flex").into_data();
        ours.assert_approx_eq::<f32>(&activation::softmax(x.clone(), 2).into_data(), close);
        assert_eq!(contiguous(x.clone()).into_data(), x.into_data());
        let images = tensor([2, 3, 9, 8], 5.0);
        let ours = max_pool2d(images.clone(), [3, 3], [2, 2], [1, 1]).expect("flex");
        let burns =
            burn::tensor::module::max_pool2d(images.clone(), [3, 3], [2, 2], [1, 1], [1, 1], false);
        assert_eq!(ours.into_data(), burns.into_data());
        for include in [false, true] {
            let ours = avg_pool2d(images.clone(), [3, 3], [1, 1], [1, 1], include).expect("flex");
            let burns = burn::tensor::module::avg_pool2d(
                images.clone(),
                [3, 3],
                [1, 1],
                [1, 1],
                include,
                false,
            );
            ours.into_data()
                .assert_approx_eq::<f32>(&burns.into_data(), close);
        }
    }

    /// Deterministic values in about [−scale, scale].
    fn wave(n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|i| (i as f32 * 0.618_034).sin() * scale)
            .collect()
    }

    /// Group norm, with and without its affine and the SiLU after it, against the definition
    /// in f64, on activations whose groups sit far from zero (conv outputs), where one-pass
    /// statistics would cancel.
    #[test]
    fn group_norm_equals_the_definition() {
        let device = Default::default();
        let ([n, c, h, w], groups, eps) = ([3, 8, 5, 7], 4, 1e-5);
        let values: Vec<f32> = wave(n * c * h * w, 0.5).iter().map(|v| v + 40.0).collect();
        let (gamma, beta) = (wave(c, 1.5), wave(c + 3, 1.0)[3..].to_vec());
        let x =
            Tensor::<Flex, 4>::from_data(TensorData::new(values.clone(), [n, c, h, w]), &device);
        let param = |v: &Vec<f32>| Tensor::<Flex, 1>::from_floats(v.as_slice(), &device);
        let per_group = c / groups * h * w;
        let silu64 = |v: f64| v / (1.0 + (-v).exp());
        for (affine, then_silu) in [(true, false), (true, true), (false, false)] {
            let ours = group_norm(
                x.clone(),
                groups,
                affine.then(|| (param(&gamma), param(&beta))),
                eps,
                then_silu,
            )
            .expect("flex")
            .into_data()
            .to_vec::<f32>()
            .unwrap();
            for (g, block) in values.chunks(per_group).enumerate() {
                let mean = block.iter().map(|&v| v as f64).sum::<f64>() / per_group as f64;
                let var = block
                    .iter()
                    .map(|&v| (v as f64 - mean).powi(2))
                    .sum::<f64>()
                    / per_group as f64;
                for (i, &v) in block.iter().enumerate() {
                    let channel = (g % groups) * (c / groups) + i / (h * w);
                    let mut y = (v as f64 - mean) / (var + eps).sqrt();
                    if affine {
                        y = y * gamma[channel] as f64 + beta[channel] as f64;
                    }
                    if then_silu {
                        y = silu64(y);
                    }
                    let got = ours[g * per_group + i] as f64;
                    assert!((got - y).abs() < 2e-6 * (1.0 + y.abs()), "{got} {y}");
                }
            }
        }
    }

    /// On autodiff over burn-flex, the recorded kernels' outputs and gradients (input, γ, β)
    /// equal those of burn's ops, differentiated by burn: SiLU, GELU, QuickGELU, softmax, the layout copy
    /// and the group norm with and without SiLU.
    #[test]
    fn recorded_kernels_have_burns_gradients() {
        type A = Autodiff<Flex>;
        let device = Default::default();
        let ([n, c, h, w], groups) = ([2, 6, 3, 5], 3);
        let count = n * c * h * w;
        let data = |len: usize, scale: f32, offset: f32| {
            TensorData::new(
                wave(len, scale)
                    .iter()
                    .map(|v| v + offset)
                    .collect::<Vec<_>>(),
                [len],
            )
        };
        let leaf = |d: TensorData| Tensor::<A, 1>::from_data(d, &device).require_grad();
        let weights = Tensor::<A, 1>::from_data(data(count, 1.0, 0.3), &device);
        let close = Tolerance::absolute(2e-5).set_relative(2e-5);
        // (ours, burn's) for one function of x, γ and β.
        let compare =
            |ours: &dyn Fn(Tensor<A, 4>, Tensor<A, 1>, Tensor<A, 1>) -> Tensor<A, 4>,
             burns: &dyn Fn(Tensor<A, 4>, Tensor<A, 1>, Tensor<A, 1>) -> Tensor<A, 4>| {
                let run = |f: &dyn Fn(Tensor<A, 4>, Tensor<A, 1>, Tensor<A, 1>) -> Tensor<A, 4>| {
                    let (x, gamma, beta) = (
                        leaf(data(count, 3.0, 2.0)),
                        leaf(data(c, 1.0, 1.0)),
                        leaf(data(c, 0.5, 0.0)),
                    );
                    let y = f(x.clone().reshape([n, c, h, w]), gamma.clone(), beta.clone());
                    let grads = (y.clone().reshape([count]) * weights.clone())
                        .sum()
                        .backward();
                    let grad = |t: &Tensor<A, 1>| t.grad(&grads).map(|g| g.into_data());
                    (y.into_data(), grad(&x), grad(&gamma), grad(&beta))
                };
                let (a, b) = (run(ours), run(burns));
                a.0.assert_approx_eq::<f32>(&b.0, close);
                for (ours, burns) in [(a.1, b.1), (a.2, b.2), (a.3, b.3)] {
                    match (ours, burns) {
                        (Some(o), Some(r)) => o.assert_approx_eq::<f32>(&r, close),
                        (o, r) => assert_eq!(o.is_some(), r.is_some()),
                    }
                }
            };
        compare(
            &|x, _, _| silu(x).expect("autodiff over flex"),
            &|x, _, _| activation::silu(x),
        );
        compare(
            &|x, _, _| gelu(x).expect("autodiff over flex"),
            &|x, _, _| activation::gelu(x),
        );
        compare(
            &|x, _, _| quick_gelu(x).expect("autodiff over flex"),
            &|x, _, _| x.clone() * activation::sigmoid(x * QUICK_GELU_SLOPE),
        );
        for then_silu in [false, true] {
            let reference = |x: Tensor<A, 4>, gamma: Tensor<A, 1>, beta: Tensor<A, 1>| {
                let grouped = x.reshape([n, groups, c / groups * h * w]);
                let mean = grouped.clone().mean_dim(2);
                let centred = grouped - mean;
                let var = centred.clone().square().mean_dim(2);
                let normalised = (centred / (var + 1e-5).sqrt()).reshape([n, c, h, w]);
                let y = normalised * gamma.reshape([1, c, 1, 1]) + beta.reshape([1, c, 1, 1]);
                if then_silu {
                    activation::silu(y)
                } else {
                    y
                }
            };
            compare(
                &|x, gamma, beta| {
                    group_norm(x, groups, Some((gamma, beta)), 1e-5, then_silu).expect("autodiff")
                },
                &reference,
            );
        }
    }

    /// A NaN poisons exactly what it feeds (its group, its softmax row, its element), as in
    /// burn's ops and PyTorch's: no kernel masks it or lets it spread further.
    #[test]
    fn nan_reaches_what_it_feeds_and_nothing_else() {
        let mut values = wave(2 * 4 * 3, 1.0);
        values[0] = f32::NAN;
        let x = Tensor::<Flex, 4>::from_data(
            TensorData::new(values, [2, 4, 3, 1]),
            &Default::default(),
        );
        let nan = |t: Tensor<Flex, 4>| -> Vec<bool> {
            t.into_data().iter::<f32>().map(f32::is_nan).collect()
        };
        let normed = nan(group_norm(x.clone(), 2, None, 1e-5, true).unwrap());
        assert!(normed[..6].iter().all(|&n| n) && !normed[6..].iter().any(|&n| n));
        let soft = nan(softmax_last(x.clone().reshape([2, 4, 1, 3]))
            .unwrap()
            .reshape([2, 4, 3, 1]));
        assert!(soft[..3].iter().all(|&n| n) && !soft[3..].iter().any(|&n| n));
        for f in [silu::<Flex, 4>, gelu::<Flex, 4>, quick_gelu::<Flex, 4>] {
            let out = nan(f(x.clone()).unwrap());
            assert!(out[0] && !out[1..].iter().any(|&n| n));
        }
        // Linear over the last dim (rows of 3 here, then one row of 1): the NaN's row only,
        // every output of it.
        let weight = tensor([1, 5], 1.0);
        let out = linear(x, &weight, Some(&tensor([5], 1.0))).unwrap();
        let out: Vec<bool> = out.into_data().iter::<f32>().map(f32::is_nan).collect();
        assert!(out[..5].iter().all(|&n| n) && !out[5..].iter().any(|&n| n));
    }

    /// The fused attention (two query blocks, the second ragged; value width unlike the
    /// keys') against burn's ops composed, outputs and the gradients of q, k and v, with the
    /// keys untracked once (a frozen text context's).
    #[test]
    fn recorded_attention_has_burns_gradients() {
        type A = Autodiff<Flex>;
        let device = Default::default();
        let (n, lq, lk, heads, d, dv) = (2, 70, 9, 3, 4, 5);
        let scale = 0.5;
        let reference = |q: Tensor<A, 3>, k: Tensor<A, 3>, v: Tensor<A, 3>| {
            let split =
                |t: Tensor<A, 3>, len, width| t.reshape([n, len, heads, width]).swap_dims(1, 2);
            let scores = split(q, lq, d).matmul(split(k, lk, d).swap_dims(2, 3)) * scale;
            let out = activation::softmax(scores, 3).matmul(split(v, lk, dv));
            out.swap_dims(1, 2).reshape([n, lq, heads * dv])
        };
        let fused = |q, k, v| attention(q, k, v, heads, scale).expect("autodiff over flex");
        let close = Tolerance::absolute(1e-5).set_relative(1e-5);
        for track_keys in [true, false] {
            let run = |f: &dyn Fn(Tensor<A, 3>, Tensor<A, 3>, Tensor<A, 3>) -> Tensor<A, 3>| {
                let input = |shape: [usize; 3], scale: f32| {
                    let x = tensor(shape, scale);
                    Tensor::<A, 3>::from_data(x.into_data(), &device)
                };
                let q = input([n, lq, heads * d], 2.0).require_grad();
                let k = input([n, lk, heads * d], 1.5);
                let k = if track_keys { k.require_grad() } else { k };
                let v = input([n, lk, heads * dv], 1.0).require_grad();
                let y = f(q.clone(), k.clone(), v.clone());
                let weights = input([n, lq, heads * dv], 0.7);
                let grads = (y.clone() * weights).sum().backward();
                let grad = |t: &Tensor<A, 3>| t.grad(&grads).map(|g| g.into_data());
                (y.into_data(), [grad(&q), grad(&k), grad(&v)])
            };
            let (ours, burns) = (run(&fused), run(&reference));
            ours.0.assert_approx_eq::<f32>(&burns.0, close);
            for (o, r) in ours.1.into_iter().zip(burns.1) {
                match (o, r) {
                    (Some(o), Some(r)) => o.assert_approx_eq::<f32>(&r, close),
                    (o, r) => assert_eq!((o.is_some(), r.is_some()), (track_keys, track_keys)),
                }
            }
        }
        // Heads that do not divide the channels, another backend: handed back.
        let q = tensor([1, 4, 6], 1.0);
        assert!(attention(q.clone(), q.clone(), q.clone(), 4, 1.0).is_err());
        let x = Tensor::<NdArray, 3>::ones([1, 2, 4], &Default::default());
        assert!(attention(x.clone(), x.clone(), x, 2, 1.0).is_err());
    }

    /// The recorded convolution against burn's on autodiff over flex: output and the
    /// gradients of input, kernel and bias, for the UNet's 3×3 (padding 1) and 1×1 kernels,
    /// with and without bias, and with a frozen kernel (LoRA training's).
    #[test]
    fn recorded_convolution_has_burns_gradients() {
        type A = Autodiff<Flex>;
        type Convolve<'a> =
            dyn Fn(Tensor<A, 4>, Tensor<A, 4>, Option<Tensor<A, 1>>) -> Tensor<A, 4> + 'a;
        let device = Default::default();
        let close = Tolerance::absolute(1e-5).set_relative(1e-5);
        let leaf = |shape: [usize; 4], scale: f32| {
            Tensor::<A, 4>::from_data(tensor(shape, scale).into_data(), &device)
        };
        for (kernel, padding, with_bias, frozen) in [
            (3, 1, true, false),
            (1, 0, false, false),
            (3, 1, false, true),
            (3, 2, true, false),
        ] {
            let (n, c, co, h, w) = (2, 3, 4, 5, 6);
            let run = |f: &Convolve| {
                let x = leaf([n, c, h, w], 2.0).require_grad();
                let weight = leaf([co, c, kernel, kernel], 0.5);
                let weight = if frozen {
                    weight
                } else {
                    weight.require_grad()
                };
                let bias = with_bias.then(|| {
                    Tensor::<A, 1>::from_data(tensor([co], 1.0).into_data(), &device).require_grad()
                });
                let y = f(x.clone(), weight.clone(), bias.clone());
                let weights = leaf(y.dims(), 0.7);
                let grads = (y.clone() * weights).sum().backward();
                let data = |g: Option<Tensor<Flex, 4>>| g.map(|g| g.into_data());
                (
                    y.into_data(),
                    [data(x.grad(&grads)), data(weight.grad(&grads))],
                    bias.and_then(|b| b.grad(&grads)).map(|g| g.into_data()),
                )
            };
            let fused = |x, weight, bias| {
                conv2d(x, weight, bias, [1, 1], [padding, padding]).expect("autodiff over flex")
            };
            let options =
                burn::tensor::ops::ConvOptions::new([1, 1], [padding, padding], [1, 1], 1);
            let burns =
                |x, weight, bias| burn::tensor::module::conv2d(x, weight, bias, options.clone());
            let (ours, reference) = (run(&fused), run(&burns));
            ours.0.assert_approx_eq::<f32>(&reference.0, close);
            for (o, r) in ours.1.into_iter().zip(reference.1) {
                match (o, r) {
                    (Some(o), Some(r)) => o.assert_approx_eq::<f32>(&r, close),
                    (o, r) => assert_eq!(o.is_some(), r.is_some()),
                }
            }
            match (ours.2, reference.2) {
                (Some(o), Some(r)) => o.assert_approx_eq::<f32>(&r, close),
                (o, r) => assert_eq!((o.is_some(), r.is_some()), (with_bias, with_bias)),
            }
        }
        // Strided under autodiff, channels that do not match, another backend: handed back.
        let x = Tensor::<A, 4>::ones([1, 2, 4, 4], &device);
        let w = Tensor::<A, 4>::ones([2, 2, 3, 3], &device);
        assert!(conv2d(x.clone(), w.clone(), None, [2, 2], [1, 1]).is_err());
        assert!(conv2d(
            tensor([1, 3, 4, 4], 1.0),
            tensor([2, 2, 3, 3], 1.0),
            None,
            [1, 1],
            [1, 1]
        )
        .is_err());
        let x = Tensor::<NdArray, 4>::ones([1, 2, 4, 4], &Default::default());
        assert!(conv2d(x.clone(), x, None, [1, 1], [0, 0]).is_err());
    }

    /// The recorded linear against burn's on autodiff over flex: output and the gradients of
    /// input, weight and bias, for a permuted 3-D input, with and without bias, a frozen weight
    /// (the UNet's under LoRA training), a weight narrowed out of a wider one (GEGLU's halves),
    /// and an input of one row.
    #[test]
    fn recorded_linear_has_burns_gradients() {
        type A = Autodiff<Flex>;
        let device = Default::default();
        let close = Tolerance::absolute(1e-5).set_relative(1e-5);
        let leaf = |t: Tensor<Flex, 2>| Tensor::<A, 2>::from_data(t.into_data(), &device);
        let (d_in, d_out) = (24, 20);
        for (with_bias, frozen, narrowed, one_row) in [
            (true, false, false, false),
            (false, false, false, false),
            (true, true, false, false),
            (true, false, true, false),
            (false, false, false, true),
        ] {
            type Apply<'a> =
                dyn Fn(Tensor<A, 3>, &Tensor<A, 2>, Option<&Tensor<A, 1>>) -> Tensor<A, 3> + 'a;
            let run = |f: &Apply| {
                let width = if narrowed { 2 * d_out } else { d_out };
                let full = leaf(tensor([d_in, width], 1.0));
                let full = if frozen { full } else { full.require_grad() };
                let weight = full.clone().narrow(1, width - d_out, d_out);
                let bias = with_bias.then(|| {
                    Tensor::<A, 1>::from_data(tensor([d_out], 2.0).into_data(), &device)
                        .require_grad()
                });
                let x = if one_row {
                    Tensor::<A, 3>::from_data(tensor([1, 1, d_in], 2.0).into_data(), &device)
                } else {
                    let x = tensor([3, d_in, 7], 2.0);
                    Tensor::<A, 3>::from_data(x.into_data(), &device)
                };
                let x = x.require_grad();
                let input = if one_row {
                    x.clone()
                } else {
                    x.clone().swap_dims(1, 2)
                };
                let y = f(input, &weight, bias.as_ref());
                let weights = Tensor::<A, 3>::from_data(tensor(y.dims(), 0.7).into_data(), &device);
                let grads = (y.clone() * weights).sum().backward();
                (
                    y.into_data(),
                    x.grad(&grads).map(|g| g.into_data()),
                    full.grad(&grads).map(|g| g.into_data()),
                    bias.and_then(|b| b.grad(&grads)).map(|g| g.into_data()),
                )
            };
            let fused = |x, w: &Tensor<A, 2>, b: Option<&Tensor<A, 1>>| {
                linear(x, w, b).expect("autodiff over flex")
            };
            let burns = |x, w: &Tensor<A, 2>, b: Option<&Tensor<A, 1>>| {
                burn::tensor::module::linear(x, w.clone(), b.cloned())
            };
            let (ours, reference) = (run(&fused), run(&burns));
            ours.0.assert_approx_eq::<f32>(&reference.0, close);
            assert!(ours.1.is_some() && reference.1.is_some());
            assert_eq!(ours.2.is_some(), !frozen);
            for (o, r) in [
                (ours.1, reference.1),
                (ours.2, reference.2),
                (ours.3, reference.3),
            ] {
                match (o, r) {
                    (Some(o), Some(r)) => o.assert_approx_eq::<f32>(&r, close),
                    (o, r) => assert_eq!(o.is_some(), r.is_some()),
                }
            }
        }
    }

    /// Other backends and half precision get their tensor back, unchanged; so do autodiff over
    /// burn-flex for a group norm without affine (no recorded op), shapes the group norm cannot
    /// take, and linear inputs that do not fit.
    #[test]
    fn other_backends_and_dtypes_are_handed_back() {
        let x = Tensor::<Autodiff<NdArray>, 2>::ones([2, 3], &Default::default());
        assert_eq!(silu(x.clone()).unwrap_err().into_data(), x.into_data());
        let half = tensor([2, 3], 1.0).cast(burn::tensor::DType::BF16);
        assert!(gelu(half).is_err());
        let tracked = Tensor::<Autodiff<Flex>, 4>::ones([1, 2, 2, 2], &Default::default());
        assert!(group_norm(tracked, 1, None, 1e-5, false).is_err());
        // Groups that do not divide the channels, or an affine of the wrong length: handed
        // back, not indexed out of bounds.
        let x = tensor([1, 6, 2, 2], 1.0);
        assert!(group_norm(x.clone(), 4, None, 1e-5, true).is_err());
        assert!(group_norm(x.clone(), 0, None, 1e-5, true).is_err());
        let short = Some((tensor([5], 1.0), tensor([5], 1.0)));
        assert!(group_norm(x.clone(), 3, short, 1e-5, true).is_err());
        assert!(group_norm(x, 3, None, 1e-5, true).is_ok());
        // Pools: tracked tensors (no backward here), padding above half the kernel.
        let tracked = Tensor::<Autodiff<Flex>, 4>::ones([1, 2, 4, 4], &Default::default());
        assert!(max_pool2d(tracked, [3, 3], [1, 1], [1, 1]).is_err());
        assert!(avg_pool2d(tensor([1, 2, 4, 4], 1.0), [3, 3], [1, 1], [2, 2], false).is_err());
        assert!(max_pool2d(tensor([1, 2, 2, 2], 1.0), [3, 3], [1, 1], [0, 0]).is_err());
        // Linear: another backend, a weight or bias that does not fit.
        let other = Tensor::<Autodiff<NdArray>, 2>::ones([2, 3], &Default::default());
        let weight = Tensor::<Autodiff<NdArray>, 2>::ones([3, 4], &Default::default());
        assert!(linear(other, &weight, None).is_err());
        let tracked = Tensor::<Autodiff<Flex>, 2>::ones([2, 3], &Default::default());
        let weight = Tensor::<Autodiff<Flex>, 2>::ones([4, 3], &Default::default());
        assert!(linear(tracked, &weight, None).is_err());
        let (x, weight) = (tensor([2, 3], 1.0), tensor([3, 4], 1.0));
        assert!(linear(x.clone(), &tensor([4, 3], 1.0), None).is_err());
        assert!(linear(x.clone(), &weight, Some(&tensor([3], 1.0))).is_err());
        assert!(linear(tensor([2, 0], 1.0), &tensor([0, 4], 1.0), None).is_err());
        assert!(linear(x.clone(), &tensor([3, 0], 1.0), None).is_err());
        assert!(linear(x, &weight, Some(&tensor([4], 1.0))).is_ok());
    }

    /// The linear kernel against burn's `linear` on the layouts the networks give it: a
    /// permuted input, 1-D and 3-D inputs, a weight whose columns are narrowed out of a wider
    /// one (GEGLU's halves), transposed or broadcast, with and without the bias; large enough
    /// once to be spread over threads.
    #[test]
    fn linear_equals_burns() {
        let close = Tolerance::absolute(2e-5).set_relative(2e-5);
        let full = tensor([24, 40], 1.0);
        let weights = [
            tensor([24, 20], 1.0),
            full.clone().narrow(1, 20, 20),
            tensor([20, 24], 1.0).swap_dims(0, 1),
            // Every row the first one (stride 0, over storage that holds 24 different rows):
            // copied, not read as those rows.
            tensor([24, 20], 1.0).narrow(0, 0, 1).expand([24, 20]),
        ];
        for weight in &weights {
            for bias in [None, Some(tensor([20], 3.0))] {
                let check = |ours: Tensor<Flex, 3>, burns: Tensor<Flex, 3>| {
                    ours.into_data()
                        .assert_approx_eq::<f32>(&burns.into_data(), close);
                };
                let x = tensor([3, 24, 7], 2.0).swap_dims(1, 2);
                let burns = burn::tensor::module::linear(x.clone(), weight.clone(), bias.clone());
                check(linear(x, weight, bias.as_ref()).expect("flex"), burns);
                let x = tensor([40, 120, 24], 2.0);
                let burns = burn::tensor::module::linear(x.clone(), weight.clone(), bias.clone());
                check(linear(x, weight, bias.as_ref()).expect("flex"), burns);
                // No rows: an empty output of the right shape, nothing read.
                let empty = linear(tensor([0, 24], 1.0), weight, bias.as_ref()).expect("flex");
                assert_eq!(empty.dims(), [0, 20]);
                let x = tensor([24], 2.0);
                let burns = burn::tensor::module::linear(x.clone(), weight.clone(), bias.clone());
                let ours = linear(x, weight, bias.as_ref()).expect("flex");
                ours.into_data()
                    .assert_approx_eq::<f32>(&burns.into_data(), close);
            }
        }
    }
}
