//! Reaching burn-flex's storage from code generic over the backend.

use std::any::{Any, TypeId};

use burn::tensor::{backend::Backend, DType, Tensor, TensorData, TensorPrimitive};
use burn_flex::FlexTensor;

use super::layout_copy::{copy_row_major, View};

/// The tensor as burn-flex's own, contiguous and f32, when `B`'s float tensors *are*
/// burn-flex's (the inference backend on the CPU); the tensor back, untouched, otherwise.
///
/// A type check, not a trait bound: the networks stay generic over every backend, and only
/// this one gets the fused kernels (see the module doc).
pub(crate) fn flex_f32<B: Backend, const D: usize>(
    x: Tensor<B, D>,
) -> Result<FlexTensor, Tensor<B, D>> {
    flex_f32_as_laid_out(x).map(row_major)
}

/// [`flex_f32`] without the copy to row-major order: the tensor as it is laid out (a view's
/// strides and offset kept).
pub(crate) fn flex_f32_as_laid_out<B: Backend, const D: usize>(
    x: Tensor<B, D>,
) -> Result<FlexTensor, Tensor<B, D>> {
    if !is_flex_f32(&x) {
        return Err(x);
    }
    match x.into_primitive() {
        TensorPrimitive::Float(p) => {
            let any: Box<dyn Any> = Box::new(p);
            Ok(*any
                .downcast::<FlexTensor>()
                .expect("the type was checked above"))
        }
        quantized => Err(Tensor::from_primitive(quantized)),
    }
}

/// A 2-D f32 tensor's elements as rows: the storage from its first element and the distance
/// between rows, when its columns are adjacent (a row-major matrix, or columns narrowed out of
/// one); `None` for other layouts.
pub(crate) fn matrix_rows(t: &FlexTensor) -> Option<(&[f32], usize)> {
    let layout = t.layout();
    let (&[rows, columns], &[row_stride, 1]) = (&layout.shape()[..], layout.strides()) else {
        return None;
    };
    // One row: its stride is never used (and size-1 dims may carry any stride). Rows that
    // overlap (a broadcast weight's stride 0) are not rows of a matrix the product can read.
    let row_stride = match (rows, usize::try_from(row_stride)) {
        (0 | 1, _) => columns,
        (_, Ok(stride)) if stride >= columns => stride,
        _ => return None,
    };
    let span = match rows.checked_sub(1) {
        None => 0,
        Some(last) => last.checked_mul(row_stride)?.checked_add(columns)?,
    };
    let start = layout.start_offset();
    let storage = t.storage::<f32>().get(start..start.checked_add(span)?)?;
    Some((storage, row_stride))
}

/// `t` itself when [`matrix_rows`] can read it, else copied to row-major order (which it can).
pub(crate) fn readable_as_rows(t: FlexTensor) -> FlexTensor {
    match matrix_rows(&t) {
        Some(_) => t,
        None => row_major(t),
    }
}

/// Whether [`flex_f32`] would take `x`.
pub(crate) fn is_flex_f32<B: Backend, const D: usize>(x: &Tensor<B, D>) -> bool {
    TypeId::of::<B::FloatTensorPrimitive>() == TypeId::of::<FlexTensor>() && x.dtype() == DType::F32
}

/// A tensor of `B` from `B`'s own float primitive `P` (burn-flex's tensor where [`flex_f32`]
/// matched, the autodiff one where `tracked_f32` did).
pub(crate) fn into_tensor<B: Backend, const D: usize, P: 'static>(p: P) -> Tensor<B, D> {
    let any: Box<dyn Any> = Box::new(p);
    let primitive = *any
        .downcast::<B::FloatTensorPrimitive>()
        .expect("into_tensor is only called with the primitive a match found B to have");
    Tensor::from_primitive(TensorPrimitive::Float(primitive))
}

/// The elements of a [`row_major`] f32 tensor.
pub(crate) fn values(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("a row-major f32 tensor")
}

/// A tensor of `like`'s shape holding `values`.
pub(crate) fn from_values(values: Vec<f32>, like: &FlexTensor) -> FlexTensor {
    let shape: Vec<usize> = like.layout().shape().iter().copied().collect();
    from_shape(values, shape)
}

/// A row-major tensor of `shape` holding `values`.
pub(crate) fn from_shape(values: Vec<f32>, shape: impl Into<Vec<usize>>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.into()))
}

/// `t` laid out contiguously from offset 0 over exactly its elements, so that its storage is
/// the tensor in row-major order: the same buffer when it already is (unique again once `t`
/// drops), else copied by [`layout_copy`] where it handles the layout, by burn-flex otherwise.
pub(crate) fn row_major(t: FlexTensor) -> FlexTensor {
    let layout = t.layout();
    let strides: Option<Vec<usize>> = layout
        .strides()
        .iter()
        .map(|&s| usize::try_from(s).ok())
        .collect();
    let (Some(strides), false) = (strides, layout.is_contiguous()) else {
        return t.to_contiguous();
    };
    let shape: Vec<usize> = layout.shape().iter().copied().collect();
    let view = View {
        src: t.storage::<f32>(),
        offset: layout.start_offset(),
        shape: &shape,
        strides: &strides,
    };
    match copy_row_major(&view) {
        Some(values) => FlexTensor::from_data(TensorData::new(values, shape)),
        None => t.to_contiguous(),
    }
}
