//! How the papers' reward code turns an image into a network's input, reproduced on tensors of
//! images `[N, 3, H, W]` in [0, 1] (the pixels are left in [0, 1]; each network normalises).
//!
//! - CLIPImageProcessor (DDPO's and DAG's aesthetic scores): the image to 8 bits, Pillow's
//!   bicubic resize of its shortest side (antialiased, 8-bit passes), the centre square at
//!   `excess // 2`.
//! - torchvision's `Resize(s)` + `CenterCrop(s)` on a PIL image (ImageReward's `score`): the
//!   same Pillow resize, the crop at `int(round(excess / 2))` (half to even), one pixel apart
//!   from the processor's when the excess is 3, 7, 11, ….
//! - The same on a float tensor (∇-GFlowNet's ImageReward gradient): torchvision's antialiased
//!   bicubic in floating point, no 8-bit rounding.
//! - torch's `interpolate` bicubic of the whole image to a square, no antialias, no crop
//!   (∇-GFlowNet's aesthetic gradient).
//!
//! Only the crop's window is resized: a 2×6000 image would otherwise become 224×672000.

use std::ops::Range;

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use bench_models::resize::{pil_resize_window, resize, resize_window, Kernel};

/// Which preprocessing a reward's scores take (gradients always take `Differentiable`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Preprocess {
    /// The reference's scoring path on 8-bit images: Pillow bicubic of the shortest side,
    /// centre crop.
    #[default]
    Processor,
    /// The reference's tensor path (the one gradients take).
    Differentiable,
}

/// Where a centre crop starts along a side `excess` pixels longer than the crop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CropOffset {
    /// transformers' image processors: `excess // 2`.
    Floor,
    /// torchvision's `CenterCrop`: `int(round(excess / 2))`, half to even.
    RoundHalfEven,
}

impl CropOffset {
    fn start(self, excess: usize) -> usize {
        match self {
            Self::Floor => excess / 2,
            Self::RoundHalfEven => (excess as f64 / 2.0).round_ties_even() as usize,
        }
    }
}

/// The size the shortest side of an `h × w` image resized to `size` gives (the other side
/// `int(size · long / short)`, as transformers and torchvision both compute it), and the window
/// of the centred `size × size` crop in it.
pub fn shortest_side_crop(
    [h, w]: [usize; 2],
    size: usize,
    offset: CropOffset,
) -> ([usize; 2], [Range<usize>; 2]) {
    let (h, w) = (h.max(1), w.max(1));
    let (oh, ow) = if h <= w {
        (size, size * w / h)
    } else {
        (size * h / w, size)
    };
    let (oh, ow) = (oh.max(size), ow.max(size));
    let (top, left) = (offset.start(oh - size), offset.start(ow - size));
    ([oh, ow], [top..top + size, left..left + size])
}

/// Pillow's path: 8-bit levels, the shortest side to `size` by Pillow's bicubic, the centre
/// square at `offset`; in [0, 1].
pub fn pil_shortest_side_crop<B: Backend>(
    images: Tensor<B, 4>,
    size: usize,
    offset: CropOffset,
) -> Tensor<B, 4> {
    let [_, _, h, w] = images.dims();
    let (resized, window) = shortest_side_crop([h, w], size, offset);
    let levels = (images * 255.0).round().clamp(0.0, 255.0);
    pil_resize_window(levels, resized, window) / 255.0
}

/// torchvision's tensor path (differentiable): the shortest side to `size` by antialiased
/// bicubic in floating point, the centre square at torchvision's offsets.
pub fn tensor_shortest_side_crop<B: Backend>(images: Tensor<B, 4>, size: usize) -> Tensor<B, 4> {
    let [_, _, h, w] = images.dims();
    let (resized, window) = shortest_side_crop([h, w], size, CropOffset::RoundHalfEven);
    resize_window(images, Kernel::PilBicubic, resized, window)
}

/// CLIPImageProcessor's pixels, CLIP's mean and std applied.
pub fn processor_pixels<B: Backend>(images: Tensor<B, 4>, size: usize) -> Tensor<B, 4> {
    bench_models::clip::clip_normalise(pil_shortest_side_crop(images, size, CropOffset::Floor))
}

/// ∇-GFlowNet's aesthetic pixels: torch bicubic of the whole image to `size × size`, CLIP's
/// mean and std applied.
pub fn differentiable_pixels<B: Backend>(images: Tensor<B, 4>, size: usize) -> Tensor<B, 4> {
    bench_models::clip::clip_normalise(resize(images, Kernel::TorchBicubic, [size, size]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_offsets_are_the_references() {
        // 40×49 → 32×39: excess 7, transformers 3, torchvision round(3.5) = 4.
        assert_eq!(
            shortest_side_crop([40, 49], 32, CropOffset::Floor),
            ([32, 39], [0..32, 3..35])
        );
        assert_eq!(
            shortest_side_crop([40, 49], 32, CropOffset::RoundHalfEven),
            ([32, 39], [0..32, 4..36])
        );
        // Excess 5: round(2.5) = 2 (half to even), as Python's round.
        assert_eq!(
            shortest_side_crop([37, 32], 32, CropOffset::RoundHalfEven).1,
            [2..34, 0..32]
        );
        // int(224 · 61 / 37) = 369.
        assert_eq!(
            shortest_side_crop([61, 37], 224, CropOffset::Floor).0,
            [369, 224]
        );
    }
}
