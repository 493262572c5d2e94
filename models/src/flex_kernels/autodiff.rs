//! The fused kernels on autodiff over burn-flex (the CPU training backend), each recorded as
//! one operation with its own backward pass, as burn's autodiff records its ops (`Backward`).
//!
//! Composed from burn ops, a LoRA training step's group norms and SiLUs were ~20 recorded
//! operations each, every one a pass over the activations forward and again backward, and
//! SiLU's backward a scalar `exp` per element; here each is one pass forward and one (two for
//! the group norm) backward.

use std::any::{Any, TypeId};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::{Backend, BackendTypes};
use burn::tensor::TensorData;
use burn::tensor::{DType, Tensor, TensorPrimitive};
use burn_flex::{FlexTensor, Layout};

use super::attention::{self, attention_backward};
use super::conv::{conv2d as conv2d_kernel, Conv};
use super::dispatch::{from_shape, from_values, matrix_rows, readable_as_rows, row_major, values};
use super::group_norm::{group_norm_backward, Affine};
use super::layout_copy::{dense_permutation, into_memory_order};
use super::linear::{bias_gradient, input_gradient, linear_of_tensors, weight_gradient};
use super::softmax::{softmax_backward_rows, softmax_rows};
use super::vector_math;

/// A tensor of autodiff over burn-flex (whatever its checkpointing strategy): burn-flex's
/// tensor (`primitive`) and its node in the graph (`node`).
pub(crate) type Tracked = <Autodiff<Flex> as BackendTypes>::FloatTensorPrimitive;

/// The checkpointing strategies of autodiff over burn-flex that `bench` builds (the
/// `checkpointing` feature picks the balanced one).
#[derive(Clone, Copy)]
pub(crate) enum Strategy {
    None,
    Balanced,
}

/// The tensor as a [`Tracked`] f32 one when `B` is autodiff over burn-flex; `Err(x)` else.
pub(crate) fn tracked_f32<B: Backend, const D: usize>(
    x: Tensor<B, D>,
) -> Result<(Strategy, Tracked), Tensor<B, D>> {
    let Some(strategy) = strategy::<B>().filter(|_| x.dtype() == DType::F32) else {
        return Err(x);
    };
    match x.into_primitive() {
        TensorPrimitive::Float(p) => {
            let any: Box<dyn Any> = Box::new(p);
            let t = *any.downcast::<Tracked>().expect("B was checked above");
            Ok((strategy, t))
        }
        quantized => Err(Tensor::from_primitive(quantized)),
    }
}

/// Whether [`tracked_f32`] would take `x`.
pub(crate) fn is_tracked_f32<B: Backend, const D: usize>(x: &Tensor<B, D>) -> bool {
    strategy::<B>().is_some() && x.dtype() == DType::F32
}

/// `B`'s checkpointing strategy when `B` is autodiff over burn-flex.
fn strategy<B: Backend>() -> Option<Strategy> {
    let b = TypeId::of::<B>();
    if b == TypeId::of::<Autodiff<Flex>>() {
        Some(Strategy::None)
    } else if b == TypeId::of::<Autodiff<Flex, BalancedCheckpointing>>() {
        Some(Strategy::Balanced)
    } else {
        None
    }
}

/// Records `op` (its backward pass, with `state`) as producing `output` from `parents`.
pub(crate) fn record<Op, const N: usize>(
    strategy: Strategy,
    op: Op,
    parents: [&Tracked; N],
    state: Op::State,
    output: FlexTensor,
) -> Tracked
where
    Op: Backward<Flex, N>,
{
    fn with<C: CheckpointStrategy, Op: Backward<Flex, N>, const N: usize>(
        op: Op,
        parents: [&Tracked; N],
        state: Op::State,
        output: FlexTensor,
    ) -> Tracked {
        let nodes = parents.map(|p| p.node.clone());
        match op.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(state, output),
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }
    match strategy {
        Strategy::None => with::<NoCheckpointing, Op, N>(op, parents, state, output),
        Strategy::Balanced => with::<BalancedCheckpointing, Op, N>(op, parents, state, output),
    }
}

/// An elementwise function with its gradient kernel (`out = g · f′(x)`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Elementwise {
    pub forward: fn(&mut [f32]),
    pub gradient: fn(&[f32], &[f32], &mut [f32]),
}

pub(crate) const SILU: Elementwise = Elementwise {
    forward: vector_math::silu,
    gradient: vector_math::silu_grad,
};

pub(crate) const GELU: Elementwise = Elementwise {
    forward: vector_math::gelu,
    gradient: vector_math::gelu_grad,
};

pub(crate) const QUICK_GELU: Elementwise = Elementwise {
    forward: vector_math::quick_gelu,
    gradient: vector_math::quick_gelu_grad,
};

impl Backward<Flex, 1> for Elementwise {
    /// The input.
    type State = FlexTensor;

    fn backward(self, ops: Ops<FlexTensor, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let x = row_major(ops.state);
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            let grad = row_major(grad);
            let mut out = vec![0f32; values(&x).len()];
            (self.gradient)(values(&x), values(&grad), &mut out);
            from_values(out, &x)
        });
    }
}

/// `f(x)` recorded with its backward pass.
pub(crate) fn elementwise(strategy: Strategy, f: Elementwise, x: Tracked) -> Tracked {
    let input = row_major(x.primitive.clone());
    let mut out = values(&input).to_vec();
    (f.forward)(&mut out);
    let output = from_values(out, &input);
    record(strategy, f, [&x], input, output)
}

/// Softmax over the last dimension: `dx = y·(dy − Σ dy·y)` per row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Softmax;

impl Backward<Flex, 1> for Softmax {
    /// The output.
    type State = FlexTensor;

    fn backward(self, ops: Ops<FlexTensor, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let y = row_major(ops.state);
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            let mut dx = values(&row_major(grad)).to_vec();
            let row_len = *y
                .layout()
                .shape()
                .last()
                .expect("softmax of a tensor with dims");
            softmax_backward_rows(values(&y), &mut dx, row_len);
            from_values(dx, &y)
        });
    }
}

/// Softmax over the last dimension, recorded with its backward pass.
pub(crate) fn softmax_last(strategy: Strategy, x: Tracked) -> Tracked {
    let input = row_major(x.primitive.clone());
    let row_len = *input
        .layout()
        .shape()
        .last()
        .expect("softmax of a tensor with dims");
    let mut out = values(&input).to_vec();
    softmax_rows(&mut out, row_len);
    let output = from_values(out, &input);
    record(strategy, Softmax, [&x], output.clone(), output)
}

/// A row-major copy: the identity for gradients, whose gradient goes back laid out as the
/// input was (when that is a permuted dense layout), so that the view operations before it
/// (`swap_dims`, then a `reshape` in the backward pass) find it contiguous instead of copying
/// it element by element.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Contiguous;

impl Backward<Flex, 1> for Contiguous {
    /// The input's layout.
    type State = Layout;

    fn backward(self, ops: Ops<Layout, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let input = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            let shape: Vec<usize> = input.shape().iter().copied().collect();
            let Some(order) = dense_permutation(&shape, input.strides()) else {
                return grad;
            };
            if order.windows(2).all(|w| w[0] < w[1]) {
                return grad;
            }
            let grad = row_major(grad);
            let memory = into_memory_order(values(&grad), &shape, &order);
            let memory_shape: Vec<usize> = order.iter().map(|&d| shape[d]).collect();
            let layout = Layout::new(input.shape().clone(), input.strides().to_vec(), 0);
            FlexTensor::from_data(TensorData::new(memory, memory_shape)).with_layout(layout)
        });
    }
}

/// `x` copied into row-major order ([`row_major`]), recorded as the identity.
pub(crate) fn contiguous(strategy: Strategy, x: Tracked) -> Tracked {
    let layout = x.primitive.layout().clone();
    let output = row_major(x.primitive.clone());
    record(strategy, Contiguous, [&x], layout, output)
}

/// A group norm with its affine (and SiLU after it, when `silu`).
#[derive(Debug, Clone)]
pub(crate) struct GroupNorm {
    pub groups: usize,
    pub eps: f64,
    pub silu: bool,
}

impl Backward<Flex, 3> for GroupNorm {
    /// The input, γ and β.
    type State = (FlexTensor, FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, gamma, beta) = ops.state;
        let (x, gamma, beta) = (row_major(x), row_major(gamma), row_major(beta));
        let dy = row_major(grads.consume::<Flex>(&ops.node));
        let dims: Vec<usize> = x.layout().shape().iter().copied().collect();
        let affine = Affine {
            gamma: values(&gamma),
            beta: values(&beta),
        };
        let g = group_norm_backward(
            values(&x),
            &dims,
            self.groups,
            &affine,
            self.eps,
            self.silu,
            values(&dy),
        );
        let [px, pgamma, pbeta] = ops.parents;
        for (parent, values, like) in [
            (px, g.x, &x),
            (pgamma, g.gamma, &gamma),
            (pbeta, g.beta, &beta),
        ] {
            if let Some(node) = parent {
                grads.register::<Flex>(node.id, from_values(values, like));
            }
        }
    }
}

/// Multi-head attention (`attention.rs`) of `q`, `k`, `v`; its backward pass recomputes the
/// probabilities instead of keeping them (one `[Lk, 64]` block at a time).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attention(pub attention::Shape);

impl Backward<Flex, 3> for Attention {
    /// `q`, `k` and `v`, row-major.
    type State = [FlexTensor; 3];

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [q, k, v] = ops.state;
        let dout = row_major(grads.consume::<Flex>(&ops.node));
        let g = attention_backward(values(&q), values(&k), values(&v), values(&dout), self.0);
        for ((parent, values), like) in ops.parents.into_iter().zip(g).zip([&q, &k, &v]) {
            if let Some(node) = parent {
                grads.register::<Flex>(node.id, from_values(values, like));
            }
        }
    }
}

/// Multi-head attention recorded with its backward pass.
pub(crate) fn attention(strategy: Strategy, qkv: [Tracked; 3], shape: attention::Shape) -> Tracked {
    let inputs = qkv.each_ref().map(|t| row_major(t.primitive.clone()));
    let [q, k, v] = inputs.each_ref().map(values);
    let out = attention::attention(q, k, v, shape);
    let output = from_shape(out, [shape.n, shape.lq, shape.heads * shape.dv]);
    let [q, k, v] = &qkv;
    record(strategy, Attention(shape), [q, k, v], inputs, output)
}

/// The backward passes of an operation of an input, a weight and an optional bias, recorded
/// with two parents or three: both hand the parents' ids (`None` for the missing bias) to the
/// operation's `backward_into`.
macro_rules! with_optional_bias {
    ($op:ty, $state:ty) => {
        impl Backward<Flex, 2> for $op {
            type State = $state;

            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let dy = grads.consume::<Flex>(&ops.node);
                let [x, weight] = ops.parents.map(|p| p.map(|node| node.id));
                self.backward_into([x, weight, None], ops.state, dy, grads);
            }
        }

        impl Backward<Flex, 3> for $op {
            type State = $state;

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let dy = grads.consume::<Flex>(&ops.node);
                let ids = ops.parents.map(|p| p.map(|node| node.id));
                self.backward_into(ids, ops.state, dy, grads);
            }
        }
    };
}

/// A stride-1 convolution ([`Conv`]) of an input `[n, c, h, w]`; its input gradient is the
/// convolution of the output gradient with the flipped kernel (`conv.rs`), the kernel's and
/// bias's gradients burn-flex's own (`conv2d_weight_backward`) and a sum.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Convolution {
    pub conv: Conv,
    pub dims: [usize; 4],
}

/// The kernel, and the input where the kernel's gradient needs it.
pub(crate) type ConvolutionState = (FlexTensor, Option<FlexTensor>);

impl Convolution {
    fn backward_into(
        self,
        [x_id, weight_id, bias_id]: [Option<NodeId>; 3],
        (weight, x): ConvolutionState,
        dy: FlexTensor,
        grads: &mut Gradients,
    ) {
        let [n, c, h, w] = self.dims;
        let co = self.conv.channels_out;
        let [ho, wo] = self.conv.output_size([h, w]).expect("checked forward");
        let dy = row_major(dy);
        if let Some(id) = x_id {
            let (back, flipped) = self
                .conv
                .input_gradient(c, values(&weight))
                .expect("recorded only at stride 1, padding below the kernel");
            let dx = conv2d_kernel(values(&dy), [n, co, ho, wo], &flipped, None, &back);
            grads.register::<Flex>(id, from_shape(dx, self.dims));
        }
        if let Some(id) = weight_id {
            let x = x.clone().expect("kept when the kernel is tracked");
            let options =
                burn::tensor::ops::ConvOptions::new(self.conv.stride, self.conv.padding, [1, 1], 1);
            let dw = <Flex as burn::tensor::ops::ModuleOps<Flex>>::conv2d_weight_backward(
                x,
                weight.clone(),
                dy.clone(),
                options,
            );
            grads.register::<Flex>(id, dw);
        }
        if let Some(id) = bias_id {
            let mut db = vec![0f32; co];
            for image in values(&dy).chunks(co * ho * wo) {
                for (sum, plane) in db.iter_mut().zip(image.chunks(ho * wo)) {
                    *sum += plane.iter().sum::<f32>();
                }
            }
            grads.register::<Flex>(id, from_shape(db, [co]));
        }
    }
}

with_optional_bias!(Convolution, ConvolutionState);

/// A stride-1 convolution recorded with its backward pass.
pub(crate) fn conv2d(
    strategy: Strategy,
    x: Tracked,
    weight: Tracked,
    bias: Option<Tracked>,
    op: Convolution,
) -> Tracked {
    let input = row_major(x.primitive.clone());
    let kernel = row_major(weight.primitive.clone());
    let b = bias.as_ref().map(|b| row_major(b.primitive.clone()));
    let out = conv2d_kernel(
        values(&input),
        op.dims,
        values(&kernel),
        b.as_ref().map(values),
        &op.conv,
    );
    let [n, _, h, w] = op.dims;
    let [ho, wo] = op.conv.output_size([h, w]).expect("checked by the caller");
    let output = from_shape(out, [n, op.conv.channels_out, ho, wo]);
    let keep_input = !weight.node.requirement.is_none();
    let state = (kernel, keep_input.then_some(input));
    match &bias {
        Some(b) => record(strategy, op, [&x, &weight, b], state, output),
        None => record(strategy, op, [&x, &weight], state, output),
    }
}

/// `x·W + b` over the last dimension (`linear.rs`): `dx = dy·Wᵀ`, `dW = xᵀ·dy`, `db = Σ dy`
/// over the rows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Linear {
    pub d_in: usize,
    pub d_out: usize,
}

/// The weight, laid out so that [`matrix_rows`] reads it, and the input (row-major) where the
/// weight's gradient needs it.
pub(crate) type LinearState = (FlexTensor, Option<FlexTensor>);

impl Linear {
    fn backward_into(
        self,
        [x_id, weight_id, bias_id]: [Option<NodeId>; 3],
        (weight, x): LinearState,
        dy: FlexTensor,
        grads: &mut Gradients,
    ) {
        let Self { d_in, d_out } = self;
        let dy = row_major(dy);
        if let Some(id) = x_id {
            let rows = matrix_rows(&weight).expect("kept readable as rows");
            let dx = input_gradient(values(&dy), rows, d_in, d_out);
            let mut shape: Vec<usize> = dy.layout().shape().iter().copied().collect();
            *shape.last_mut().expect("a linear's output has dims") = d_in;
            grads.register::<Flex>(id, from_shape(dx, shape));
        }
        if let Some(id) = weight_id {
            let x = x.as_ref().expect("kept when the weight is tracked");
            let dw = weight_gradient(values(x), values(&dy), d_in, d_out);
            grads.register::<Flex>(id, from_shape(dw, [d_in, d_out]));
        }
        if let Some(id) = bias_id {
            grads.register::<Flex>(id, from_shape(bias_gradient(values(&dy), d_out), [d_out]));
        }
    }
}

with_optional_bias!(Linear, LinearState);

/// `x·W + b` over the last dimension of `x` (`weight` `[d_in, d_out]` as `op` says, shapes
/// checked by the caller), recorded with its backward pass.
pub(crate) fn linear(
    strategy: Strategy,
    x: Tracked,
    weight: Tracked,
    bias: Option<Tracked>,
    op: Linear,
) -> Tracked {
    let input = row_major(x.primitive.clone());
    let kernel = readable_as_rows(weight.primitive.clone());
    let b = bias.as_ref().map(|b| row_major(b.primitive.clone()));
    let output = linear_of_tensors(&input, &kernel, b.as_ref());
    let keep_input = !weight.node.requirement.is_none();
    let state = (kernel, keep_input.then_some(input));
    match &bias {
        Some(b) => record(strategy, op, [&x, &weight, b], state, output),
        None => record(strategy, op, [&x, &weight], state, output),
    }
}
