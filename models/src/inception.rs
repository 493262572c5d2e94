//! Inception v3 as pytorch-fid defines it for FID (`InceptionV3(output_blocks=[3])` with
//! `use_fid_inception=True`): torchvision's Inception3 with the TF-ported blocks
//! `FIDInceptionA/C/E_1/E_2` — their average pools leave the padding out of the count
//! (`count_include_pad=False`), and E_2's pool branch is a 3×3 max-pool — every convolution
//! without bias followed by a batch norm (eps 1e-3, running statistics) and a ReLU; the output
//! is the 2048-d average of the last block (pool3). Inputs in [0, 1] are resized bilinearly to
//! 299×299 (no antialias, `align_corners=False`) and scaled to [−1, 1], as pytorch-fid does.
//!
//! Field names are the state dict's (`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch_pool.bn.
//! running_var`, …), so `pt_inception-2015-12-05-6726825d.pth` loads key for key; its `fc`
//! (1008 classes) is not used. The batch norms are frozen affine maps: a loaded network never
//! uses batch statistics, whichever backend it runs on.

#![allow(non_snake_case)]

use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::module::{avg_pool2d, max_pool2d};
use burn::tensor::Tensor;

use crate::conv::conv2d;
use crate::flex_kernels;
use crate::per_channel::per_channel;
use crate::resize::{resize, Kernel};
use crate::weights::{check_mapped, load_mapped, read_tensors, FileKey, FileReport, LoadError};

/// Where users get the weights.
pub const FID_WEIGHTS_SOURCE: &str = "`pt_inception-2015-12-05-6726825d.pth` (pytorch-fid's \
     FID Inception weights) from https://github.com/mseitzer/pytorch-fid/releases/download/\
     fid_weights/pt_inception-2015-12-05-6726825d.pth";

/// pytorch-fid's input side.
pub const INPUT_SIZE: usize = 299;
/// The pool3 feature width.
pub const FEATURES: usize = 2048;
const BN_EPS: f64 = 1e-3;

/// A batch norm with frozen running statistics: `(x − mean) / √(var + eps) · weight + bias`.
#[derive(Module, Debug)]
pub struct FrozenBatchNorm<B: Backend> {
    pub weight: Param<Tensor<B, 1>>,
    pub bias: Param<Tensor<B, 1>>,
    pub running_mean: Param<Tensor<B, 1>>,
    pub running_var: Param<Tensor<B, 1>>,
}

impl<B: Backend> FrozenBatchNorm<B> {
    fn new(channels: usize, device: &B::Device) -> Self {
        let zeros = || Param::from_tensor(Tensor::zeros([channels], device));
        Self {
            weight: zeros(),
            bias: zeros(),
            running_mean: zeros(),
            running_var: zeros(),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let n = x.dims()[0];
        let scale = self.weight.val() / (self.running_var.val() + BN_EPS).sqrt();
        let shift = self.bias.val() - self.running_mean.val() * scale.clone();
        x * per_channel(scale, n) + per_channel(shift, n)
    }
}

/// torchvision's `BasicConv2d`: convolution without bias, batch norm, ReLU.
#[derive(Module, Debug)]
pub struct BasicConv2d<B: Backend> {
    pub conv: Conv2d<B>,
    pub bn: FrozenBatchNorm<B>,
}

impl<B: Backend> BasicConv2d<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        relu(self.bn.forward(conv2d(&self.conv, x)))
    }
}

/// A convolution `input → output` with kernel `[kh, kw]`, stride and padding `[ph, pw]`.
fn conv<B: Backend>(
    input: usize,
    output: usize,
    kernel: [usize; 2],
    stride: usize,
    padding: [usize; 2],
    device: &B::Device,
) -> BasicConv2d<B> {
    let [ph, pw] = padding;
    BasicConv2d {
        conv: Conv2dConfig::new([input, output], kernel)
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
            .with_bias(false)
            .with_initializer(Initializer::Zeros)
            .init(device),
        bn: FrozenBatchNorm::new(output, device),
    }
}

/// bench's pooling kernel on burn-flex (burn's pools were 28 % of the time per image), burn's
/// elsewhere.
fn pool_avg<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    flex_kernels::avg_pool2d(x, [3, 3], [1, 1], [1, 1], false)
        .unwrap_or_else(|x| avg_pool2d(x, [3, 3], [1, 1], [1, 1], false, false))
}

fn pool_max<B: Backend>(x: Tensor<B, 4>, stride: usize, padding: usize) -> Tensor<B, 4> {
    let (stride, padding) = ([stride, stride], [padding, padding]);
    flex_kernels::max_pool2d(x, [3, 3], stride, padding)
        .unwrap_or_else(|x| max_pool2d(x, [3, 3], stride, padding, [1, 1], false))
}

/// `FIDInceptionA`: 1×1, 5×5, double 3×3 and average-pool branches.
#[derive(Module, Debug)]
pub struct InceptionA<B: Backend> {
    pub branch1x1: BasicConv2d<B>,
    pub branch5x5_1: BasicConv2d<B>,
    pub branch5x5_2: BasicConv2d<B>,
    pub branch3x3dbl_1: BasicConv2d<B>,
    pub branch3x3dbl_2: BasicConv2d<B>,
    pub branch3x3dbl_3: BasicConv2d<B>,
    pub branch_pool: BasicConv2d<B>,
}

impl<B: Backend> InceptionA<B> {
    fn new(input: usize, pool_features: usize, d: &B::Device) -> Self {
        Self {
            branch1x1: conv(input, 64, [1, 1], 1, [0, 0], d),
            branch5x5_1: conv(input, 48, [1, 1], 1, [0, 0], d),
            branch5x5_2: conv(48, 64, [5, 5], 1, [2, 2], d),
            branch3x3dbl_1: conv(input, 64, [1, 1], 1, [0, 0], d),
            branch3x3dbl_2: conv(64, 96, [3, 3], 1, [1, 1], d),
            branch3x3dbl_3: conv(96, 96, [3, 3], 1, [1, 1], d),
            branch_pool: conv(input, pool_features, [1, 1], 1, [0, 0], d),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let b1 = self.branch1x1.forward(x.clone());
        let b5 = self
            .branch5x5_2
            .forward(self.branch5x5_1.forward(x.clone()));
        let b3 = self.branch3x3dbl_3.forward(
            self.branch3x3dbl_2
                .forward(self.branch3x3dbl_1.forward(x.clone())),
        );
        let bp = self.branch_pool.forward(pool_avg(x));
        Tensor::cat(vec![b1, b5, b3, bp], 1)
    }
}

/// `InceptionB` (Mixed_6a): the grid-reducing block.
#[derive(Module, Debug)]
pub struct InceptionB<B: Backend> {
    pub branch3x3: BasicConv2d<B>,
    pub branch3x3dbl_1: BasicConv2d<B>,
    pub branch3x3dbl_2: BasicConv2d<B>,
    pub branch3x3dbl_3: BasicConv2d<B>,
}

impl<B: Backend> InceptionB<B> {
    fn new(input: usize, d: &B::Device) -> Self {
        Self {
            branch3x3: conv(input, 384, [3, 3], 2, [0, 0], d),
            branch3x3dbl_1: conv(input, 64, [1, 1], 1, [0, 0], d),
            branch3x3dbl_2: conv(64, 96, [3, 3], 1, [1, 1], d),
            branch3x3dbl_3: conv(96, 96, [3, 3], 2, [0, 0], d),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let b3 = self.branch3x3.forward(x.clone());
        let bd = self.branch3x3dbl_3.forward(
            self.branch3x3dbl_2
                .forward(self.branch3x3dbl_1.forward(x.clone())),
        );
        Tensor::cat(vec![b3, bd, pool_max(x, 2, 0)], 1)
    }
}

/// `FIDInceptionC`: factorised 7×7 branches.
#[derive(Module, Debug)]
pub struct InceptionC<B: Backend> {
    pub branch1x1: BasicConv2d<B>,
    pub branch7x7_1: BasicConv2d<B>,
    pub branch7x7_2: BasicConv2d<B>,
    pub branch7x7_3: BasicConv2d<B>,
    pub branch7x7dbl_1: BasicConv2d<B>,
    pub branch7x7dbl_2: BasicConv2d<B>,
    pub branch7x7dbl_3: BasicConv2d<B>,
    pub branch7x7dbl_4: BasicConv2d<B>,
    pub branch7x7dbl_5: BasicConv2d<B>,
    pub branch_pool: BasicConv2d<B>,
}

impl<B: Backend> InceptionC<B> {
    fn new(input: usize, c7: usize, d: &B::Device) -> Self {
        let (row, col) = (([1, 7], [0, 3]), ([7, 1], [3, 0]));
        Self {
            branch1x1: conv(input, 192, [1, 1], 1, [0, 0], d),
            branch7x7_1: conv(input, c7, [1, 1], 1, [0, 0], d),
            branch7x7_2: conv(c7, c7, row.0, 1, row.1, d),
            branch7x7_3: conv(c7, 192, col.0, 1, col.1, d),
            branch7x7dbl_1: conv(input, c7, [1, 1], 1, [0, 0], d),
            branch7x7dbl_2: conv(c7, c7, col.0, 1, col.1, d),
            branch7x7dbl_3: conv(c7, c7, row.0, 1, row.1, d),
            branch7x7dbl_4: conv(c7, c7, col.0, 1, col.1, d),
            branch7x7dbl_5: conv(c7, 192, row.0, 1, row.1, d),
            branch_pool: conv(input, 192, [1, 1], 1, [0, 0], d),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let b1 = self.branch1x1.forward(x.clone());
        let b7 = [&self.branch7x7_1, &self.branch7x7_2, &self.branch7x7_3]
            .iter()
            .fold(x.clone(), |y, c| c.forward(y));
        let bd = [
            &self.branch7x7dbl_1,
            &self.branch7x7dbl_2,
            &self.branch7x7dbl_3,
            &self.branch7x7dbl_4,
            &self.branch7x7dbl_5,
        ]
        .iter()
        .fold(x.clone(), |y, c| c.forward(y));
        let bp = self.branch_pool.forward(pool_avg(x));
        Tensor::cat(vec![b1, b7, bd, bp], 1)
    }
}

/// `InceptionD` (Mixed_7a): the second grid-reducing block.
#[derive(Module, Debug)]
pub struct InceptionD<B: Backend> {
    pub branch3x3_1: BasicConv2d<B>,
    pub branch3x3_2: BasicConv2d<B>,
    pub branch7x7x3_1: BasicConv2d<B>,
    pub branch7x7x3_2: BasicConv2d<B>,
    pub branch7x7x3_3: BasicConv2d<B>,
    pub branch7x7x3_4: BasicConv2d<B>,
}

impl<B: Backend> InceptionD<B> {
    fn new(input: usize, d: &B::Device) -> Self {
        Self {
            branch3x3_1: conv(input, 192, [1, 1], 1, [0, 0], d),
            branch3x3_2: conv(192, 320, [3, 3], 2, [0, 0], d),
            branch7x7x3_1: conv(input, 192, [1, 1], 1, [0, 0], d),
            branch7x7x3_2: conv(192, 192, [1, 7], 1, [0, 3], d),
            branch7x7x3_3: conv(192, 192, [7, 1], 1, [3, 0], d),
            branch7x7x3_4: conv(192, 192, [3, 3], 2, [0, 0], d),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let b3 = self
            .branch3x3_2
            .forward(self.branch3x3_1.forward(x.clone()));
        let b7 = [
            &self.branch7x7x3_1,
            &self.branch7x7x3_2,
            &self.branch7x7x3_3,
            &self.branch7x7x3_4,
        ]
        .iter()
        .fold(x.clone(), |y, c| c.forward(y));
        Tensor::cat(vec![b3, b7, pool_max(x, 2, 0)], 1)
    }
}

/// `FIDInceptionE_1` (average pool, padding not counted) and `FIDInceptionE_2` (max pool).
#[derive(Module, Debug)]
pub struct InceptionE<B: Backend> {
    pub branch1x1: BasicConv2d<B>,
    pub branch3x3_1: BasicConv2d<B>,
    pub branch3x3_2a: BasicConv2d<B>,
    pub branch3x3_2b: BasicConv2d<B>,
    pub branch3x3dbl_1: BasicConv2d<B>,
    pub branch3x3dbl_2: BasicConv2d<B>,
    pub branch3x3dbl_3a: BasicConv2d<B>,
    pub branch3x3dbl_3b: BasicConv2d<B>,
    pub branch_pool: BasicConv2d<B>,
    /// E_2's pool branch: a max-pool.
    pub max_pool: bool,
}

impl<B: Backend> InceptionE<B> {
    fn new(input: usize, max_pool: bool, d: &B::Device) -> Self {
        Self {
            branch1x1: conv(input, 320, [1, 1], 1, [0, 0], d),
            branch3x3_1: conv(input, 384, [1, 1], 1, [0, 0], d),
            branch3x3_2a: conv(384, 384, [1, 3], 1, [0, 1], d),
            branch3x3_2b: conv(384, 384, [3, 1], 1, [1, 0], d),
            branch3x3dbl_1: conv(input, 448, [1, 1], 1, [0, 0], d),
            branch3x3dbl_2: conv(448, 384, [3, 3], 1, [1, 1], d),
            branch3x3dbl_3a: conv(384, 384, [1, 3], 1, [0, 1], d),
            branch3x3dbl_3b: conv(384, 384, [3, 1], 1, [1, 0], d),
            branch_pool: conv(input, 192, [1, 1], 1, [0, 0], d),
            max_pool,
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let b1 = self.branch1x1.forward(x.clone());
        let b3 = self.branch3x3_1.forward(x.clone());
        let b3 = Tensor::cat(
            vec![
                self.branch3x3_2a.forward(b3.clone()),
                self.branch3x3_2b.forward(b3),
            ],
            1,
        );
        let bd = self
            .branch3x3dbl_2
            .forward(self.branch3x3dbl_1.forward(x.clone()));
        let bd = Tensor::cat(
            vec![
                self.branch3x3dbl_3a.forward(bd.clone()),
                self.branch3x3dbl_3b.forward(bd),
            ],
            1,
        );
        let pooled = if self.max_pool {
            pool_max(x, 1, 1)
        } else {
            pool_avg(x)
        };
        let bp = self.branch_pool.forward(pooled);
        Tensor::cat(vec![b1, b3, bd, bp], 1)
    }
}

/// How images reach the network's 299 × 299.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FidResize {
    /// pytorch-fid's: the float image bilinear to 299², no antialiasing (aliasing when images
    /// shrink, as from SD's 512²).
    #[default]
    PytorchFid,
    /// clean-fid's "clean" resize: 8-bit levels (rounded), each channel as a Pillow float image
    /// bicubic with antialiasing to 299², clipped to [0, 255]. Fed to pytorch-fid's network
    /// scaled as `2·v/255 − 1`, where clean-fid's own TF Inception takes `(v − 128)/128`: the
    /// resize is clean-fid's, the values are not clean-fid's FIDs.
    CleanFid,
}

/// The FID Inception network up to pool3.
#[derive(Module, Debug)]
pub struct FidInception<B: Backend> {
    pub Conv2d_1a_3x3: BasicConv2d<B>,
    pub Conv2d_2a_3x3: BasicConv2d<B>,
    pub Conv2d_2b_3x3: BasicConv2d<B>,
    pub Conv2d_3b_1x1: BasicConv2d<B>,
    pub Conv2d_4a_3x3: BasicConv2d<B>,
    pub Mixed_5b: InceptionA<B>,
    pub Mixed_5c: InceptionA<B>,
    pub Mixed_5d: InceptionA<B>,
    pub Mixed_6a: InceptionB<B>,
    pub Mixed_6b: InceptionC<B>,
    pub Mixed_6c: InceptionC<B>,
    pub Mixed_6d: InceptionC<B>,
    pub Mixed_6e: InceptionC<B>,
    pub Mixed_7a: InceptionD<B>,
    pub Mixed_7b: InceptionE<B>,
    pub Mixed_7c: InceptionE<B>,
}

impl<B: Backend> FidInception<B> {
    /// The architecture with zero weights, to be overwritten by a state dict.
    pub fn init(d: &B::Device) -> Self {
        Self {
            Conv2d_1a_3x3: conv(3, 32, [3, 3], 2, [0, 0], d),
            Conv2d_2a_3x3: conv(32, 32, [3, 3], 1, [0, 0], d),
            Conv2d_2b_3x3: conv(32, 64, [3, 3], 1, [1, 1], d),
            Conv2d_3b_1x1: conv(64, 80, [1, 1], 1, [0, 0], d),
            Conv2d_4a_3x3: conv(80, 192, [3, 3], 1, [0, 0], d),
            Mixed_5b: InceptionA::new(192, 32, d),
            Mixed_5c: InceptionA::new(256, 64, d),
            Mixed_5d: InceptionA::new(288, 64, d),
            Mixed_6a: InceptionB::new(288, d),
            Mixed_6b: InceptionC::new(768, 128, d),
            Mixed_6c: InceptionC::new(768, 160, d),
            Mixed_6d: InceptionC::new(768, 160, d),
            Mixed_6e: InceptionC::new(768, 192, d),
            Mixed_7a: InceptionD::new(768, d),
            Mixed_7b: InceptionE::new(1280, false, d),
            Mixed_7c: InceptionE::new(2048, true, d),
        }
    }

    /// The network of a state dict (`pt_inception-2015-12-05-6726825d.pth`, or a safetensors
    /// copy with its keys); other keys (`fc.*`) are ignored.
    ///
    /// # Errors
    /// A missing or unreadable file; tensors missing or mis-shaped, named by their keys.
    pub fn load(path: &Path, device: &B::Device) -> Result<Self, LoadError> {
        load_mapped(Self::init(device), path, &|k: &str| FileKey::plain(k))
    }

    /// `bench doctor`'s check of a weights file from its tensor list.
    ///
    /// # Errors
    /// A missing or unreadable file.
    pub fn check(path: &Path, device: &B::Device) -> Result<FileReport, LoadError> {
        let (header, _) = read_tensors(path)?;
        Ok(check_mapped(
            &Self::init(device),
            path,
            &header,
            "",
            &|k: &str| FileKey::plain(k),
        ))
    }

    /// pytorch-fid's input of images `[N, 3, H, W]` in [0, 1]: bilinear to 299×299, to [−1, 1].
    pub fn pixels(images: Tensor<B, 4>) -> Tensor<B, 4> {
        Self::pixels_with(images, FidResize::PytorchFid)
    }

    /// The network's input of images `[N, 3, H, W]` in [0, 1] resized as `how` says, in
    /// [−1, 1].
    pub fn pixels_with(images: Tensor<B, 4>, how: FidResize) -> Tensor<B, 4> {
        let [_, _, h, w] = images.dims();
        let side = [INPUT_SIZE, INPUT_SIZE];
        let images = match how {
            FidResize::PytorchFid if [h, w] == side => images,
            FidResize::PytorchFid => resize(images, Kernel::TorchBilinear, side),
            FidResize::CleanFid => {
                let levels = (images * 255.0).round().clamp(0.0, 255.0);
                let resized = if [h, w] == side {
                    levels
                } else {
                    resize(levels, Kernel::PilBicubic, side).clamp(0.0, 255.0)
                };
                resized / 255.0
            }
        };
        images * 2.0 - 1.0
    }

    /// The pool3 features `[N, 2048]` of images `[N, 3, H, W]` in [0, 1] (pytorch-fid's resize).
    pub fn features(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        self.features_with(images, FidResize::PytorchFid)
    }

    /// The pool3 features `[N, 2048]` of images `[N, 3, H, W]` in [0, 1], resized as `how` says.
    pub fn features_with(&self, images: Tensor<B, 4>, how: FidResize) -> Tensor<B, 2> {
        let x = Self::pixels_with(images, how);
        let x = self.Conv2d_1a_3x3.forward(x);
        let x = self.Conv2d_2a_3x3.forward(x);
        let x = pool_max(self.Conv2d_2b_3x3.forward(x), 2, 0);
        let x = self.Conv2d_3b_1x1.forward(x);
        let x = pool_max(self.Conv2d_4a_3x3.forward(x), 2, 0);
        let x = self.Mixed_5b.forward(x);
        let x = self.Mixed_5c.forward(x);
        let x = self.Mixed_5d.forward(x);
        let x = self.Mixed_6a.forward(x);
        let x = self.Mixed_6b.forward(x);
        let x = self.Mixed_6c.forward(x);
        let x = self.Mixed_6d.forward(x);
        let x = self.Mixed_6e.forward(x);
        let x = self.Mixed_7a.forward(x);
        let x = self.Mixed_7b.forward(x);
        let x = self.Mixed_7c.forward(x);
        let [n, c, h, w] = x.dims();
        x.reshape([n, c, h * w]).mean_dim(2).reshape([n, c])
    }
}

/// Deterministic weights for the network's state-dict keys, that a Python script can make
/// bit for bit too: parity tests and benchmarks at full size without shipping 95 MB of
/// weights (tools/fixtures/make_inception.py hands the same values to pytorch-fid's loader).
///
/// Tensor `t` (its index in `keys`), element `i` (row-major) takes `u = mix32(i · 2654435761 +
/// t · 40503 + 12345) / 2³² − 0.5` (`mix32`: `h ^= h >> 16; h *= 0x45d9f3b; h ^= h >> 16`,
/// mod 2³²), then by kind: convolutions `u·√12·√(2/fan_in)` (He-scaled), batch-norm weights
/// `1 + 0.2u`, running variances `1 + 0.4u`, the classifier `fc` `0.01u`, anything else
/// (biases, running means) `0.2u`.
pub fn deterministic_weights(keys: &[(String, Vec<usize>)]) -> Vec<Vec<f32>> {
    keys.iter()
        .enumerate()
        .map(|(t, (key, shape))| {
            let n: usize = shape.iter().product();
            let fan_in: usize = shape.iter().skip(1).product();
            (0..n as u64)
                .map(|i| {
                    let mut h = (i * 2_654_435_761 + t as u64 * 40_503 + 12_345) & 0xFFFF_FFFF;
                    h ^= h >> 16;
                    h = (h * 0x45D_9F3B) & 0xFFFF_FFFF;
                    h ^= h >> 16;
                    let u = h as f64 / 4_294_967_296.0 - 0.5;
                    let v = if key.ends_with("conv.weight") {
                        u * 12f64.sqrt() * (2.0 / fan_in as f64).sqrt()
                    } else if key.ends_with("bn.weight") {
                        1.0 + 0.2 * u
                    } else if key.ends_with("running_var") {
                        1.0 + 0.4 * u
                    } else if key.starts_with("fc.") {
                        0.01 * u
                    } else {
                        0.2 * u
                    };
                    v as f32
                })
                .collect()
        })
        .collect()
}

/// Writes [`deterministic_weights`] for `keys` as a safetensors state dict at `path`: a
/// stand-in for the real checkpoint that the real loader reads.
///
/// # Errors
/// A key list the format refuses, or an unwritable path.
pub fn write_deterministic_weights(
    keys: &[(String, Vec<usize>)],
    path: &Path,
) -> Result<(), String> {
    let bytes: Vec<Vec<u8>> = deterministic_weights(keys)
        .iter()
        .map(|v| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views = keys
        .iter()
        .zip(&bytes)
        .map(|((k, shape), b)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b)
                .map(|view| (k.clone(), view))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    safetensors::serialize_to_file(views, None, path)
        .map_err(|e| format!("writing {}: {e}", path.display()))
}
