//! The float precision frozen networks are kept and run in.
//!
//! As diffusers' training scripts do with `weight_dtype`, the frozen networks (UNet, VAE, text
//! encoder) may be held in bf16 or f16 to halve their memory and, on GPUs, run on the tensor
//! cores; what trains (LoRA, auxiliary networks, optimizer state) stays in f32, and what the
//! environments compute from a network's output (log-probabilities, losses) is in f32: each
//! network casts its inputs to its weights' precision and its output back (see
//! [`to_precision_of`]).

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{backend::Backend, DType, FloatDType, Tensor};
use serde::{Deserialize, Serialize};

/// A float precision for frozen weights (`dtype` in a sweep's SD environment, `--dtype` for
/// `bench sample`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Precision {
    /// Single precision: the reference results.
    #[default]
    F32,
    /// bfloat16: f32's range, 8 bits of mantissa (what DDPO, DRaFT and AlignProp train with).
    Bf16,
    /// IEEE half: 11 bits of mantissa, range to 65504.
    F16,
}

impl Precision {
    pub fn float_dtype(self) -> FloatDType {
        match self {
            Self::F32 => FloatDType::F32,
            Self::Bf16 => FloatDType::BF16,
            Self::F16 => FloatDType::F16,
        }
    }

    pub fn is_f32(&self) -> bool {
        *self == Self::F32
    }

    /// The name as written in sweeps and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
            Self::F16 => "f16",
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Self::F32),
            "bf16" | "bfloat16" => Ok(Self::Bf16),
            "f16" | "fp16" | "float16" => Ok(Self::F16),
            _ => Err(format!(
                "`{s}` is not a precision: expected f32, bf16 or f16"
            )),
        }
    }
}

/// Casts the float parameters of a module, but for its norms' (kept in f32: a norm runs in
/// f32, see [`in_f32`]).
struct CastFloats {
    dtype: FloatDType,
    containers: Vec<String>,
}

impl<B: Backend> ModuleMapper<B> for CastFloats {
    fn enter_module(&mut self, _name: &str, container_type: &str) {
        self.containers.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.containers.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let in_norm = matches!(
            self.containers.last().map(String::as_str),
            Some("Struct:GroupNorm" | "Struct:LayerNorm")
        );
        if in_norm {
            return param;
        }
        let (id, tensor, mapper) = param.consume();
        Param::from_mapped_value(id, tensor.cast(self.dtype), mapper)
    }
}

/// `module` with its float parameters in `precision`, its norms' kept in f32 (unchanged for
/// f32 weights and `Precision::F32`).
pub fn cast_module<B: Backend, M: Module<B>>(module: M, precision: Precision) -> M {
    module.map(&mut CastFloats {
        dtype: precision.float_dtype(),
        containers: Vec::new(),
    })
}

/// `x` cast to the dtype of `like` (a network's weight): what a network does to its inputs.
/// No cast where the dtypes agree.
pub fn to_precision_of<B: Backend, const D: usize, const E: usize>(
    x: Tensor<B, D>,
    like: &Tensor<B, E>,
) -> Tensor<B, D> {
    to_dtype(x, like.dtype())
}

/// `x` in `dtype` (a float dtype); no cast where it already is.
pub fn to_dtype<B: Backend, const D: usize>(x: Tensor<B, D>, dtype: DType) -> Tensor<B, D> {
    if x.dtype() == dtype {
        return x;
    }
    match dtype {
        DType::F64 => x.cast(FloatDType::F64),
        DType::F16 => x.cast(FloatDType::F16),
        DType::BF16 => x.cast(FloatDType::BF16),
        _ => x.cast(FloatDType::F32),
    }
}

/// `f(x)` computed in f32 and returned in `x`'s dtype when that is bf16 or f16; `f(x)` as is
/// otherwise. For norms and softmax, whose reductions PyTorch accumulates in f32 whatever the
/// tensor's dtype (half-precision sums over thousands of values lose the statistics).
pub fn in_f32<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    f: impl FnOnce(Tensor<B, D>) -> Tensor<B, D>,
) -> Tensor<B, D> {
    let dtype = x.dtype();
    if !matches!(dtype, DType::BF16 | DType::F16) {
        return f(x);
    }
    to_dtype(f(to_dtype(x, DType::F32)), dtype)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};

    #[derive(Module, Debug)]
    struct Block<B: Backend> {
        linear: Linear<B>,
        norm: LayerNorm<B>,
    }

    #[test]
    fn casting_a_module_rounds_its_weights_but_not_its_norms() {
        let device = Default::default();
        let block = Block::<Flex> {
            linear: LinearConfig::new(3, 2).init(&device),
            norm: LayerNormConfig::new(2).init(&device),
        };
        let before = block
            .linear
            .weight
            .val()
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        let cast = cast_module(block, Precision::Bf16);
        assert_eq!(cast.linear.weight.val().dtype(), DType::BF16);
        assert_eq!(cast.norm.gamma.val().dtype(), DType::F32);
        let after = to_dtype(cast.linear.weight.val(), DType::F32)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        for (a, b) in before.iter().zip(&after) {
            // bf16 keeps 8 significant bits: rounding to nearest errs by at most half a unit
            // of the last place, 2⁻⁸ relative.
            assert!((a - b).abs() <= a.abs() / 256.0, "{a} → {b}");
        }
        assert_ne!(before, after, "nothing was rounded");
        let x = Tensor::<Flex, 2>::ones([1, 3], &device);
        let y = cast.norm.forward(
            cast.linear
                .forward(to_dtype(x, DType::BF16))
                .cast(FloatDType::F32),
        );
        assert_eq!(y.dtype(), DType::F32);
        let back = cast_module(cast, Precision::F32);
        assert_eq!(back.linear.weight.val().dtype(), DType::F32);
    }

    #[test]
    fn precisions_parse_by_their_names() {
        for p in [Precision::F32, Precision::Bf16, Precision::F16] {
            assert_eq!(p.name().parse::<Precision>().unwrap(), p);
        }
        assert!("f8".parse::<Precision>().unwrap_err().contains("`f8`"));
    }
}
