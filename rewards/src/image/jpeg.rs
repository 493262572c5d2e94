//! JPEG (in)compressibility (DDPO, DAG): an image's size in kB as DDPO's code measures it with
//! Pillow — the image ×255, rounded and clamped to 8-bit RGB, saved as JPEG at quality 95 with
//! Pillow's defaults (4:2:0 chroma subsampling, baseline, standard Huffman tables) — over 1000.
//! `jpeg_incompressibility` is the size, `jpeg_compressibility` its negation.
//!
//! The encoder is MozJPEG's library with libjpeg-turbo's settings (`set_fastest_defaults`:
//! no trellis quantisation, no optimised Huffman tables, no progressive scans), which writes
//! the files Pillow's libjpeg-turbo writes: sizes are tested against Pillow's on
//! `fixtures/jpeg/`. A size has no gradient: objectives that backpropagate through the reward
//! refuse these at plan time.

use std::panic::{catch_unwind, AssertUnwindSafe};

use burn::tensor::{backend::Backend, Tensor, TensorData};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use bench_core::validate::{Invalid, Validate};

use crate::reward::TensorReward;

/// Parameters of both JPEG rewards.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JpegParams {
    /// JPEG quality, 1–100 (95, as DDPO's code).
    pub quality: u32,
}

impl Default for JpegParams {
    fn default() -> Self {
        Self { quality: 95 }
    }
}

impl Validate for JpegParams {
    fn validate(&self) -> Result<(), Invalid> {
        if (1..=100).contains(&self.quality) {
            Ok(())
        } else {
            Err(Invalid::new(
                "quality",
                format!("= {} must be in 1..=100", self.quality),
            ))
        }
    }
}

/// Which way the size counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JpegGoal {
    /// Reward = −size: smaller files score higher.
    Compressible,
    /// Reward = +size.
    Incompressible,
}

/// The JPEG size reward.
#[derive(Clone, Debug)]
pub struct JpegSize {
    goal: JpegGoal,
    quality: u8,
}

impl JpegSize {
    pub fn new(goal: JpegGoal, params: &JpegParams) -> Self {
        Self {
            goal,
            // Validated to 1..=100.
            quality: params.quality.clamp(1, 100) as u8,
        }
    }
}

/// 8-bit interleaved RGB of images `[N, C, H, W]` in [0, 1] (×255, rounded, clamped), one
/// buffer per image. One channel is grey (repeated); of more than three, the first three.
pub fn to_rgb8(values: &[f32], [n, c, h, w]: [usize; 4]) -> Vec<Vec<u8>> {
    let level = |v: f32| (v * 255.0).round().clamp(0.0, 255.0) as u8;
    (0..n)
        .map(|i| {
            let image = &values[i * c * h * w..(i + 1) * c * h * w];
            let mut out = Vec::with_capacity(3 * h * w);
            for p in 0..h * w {
                for ch in 0..3 {
                    out.push(level(image[ch.min(c - 1) * h * w + p]));
                }
            }
            out
        })
        .collect()
}

/// The JPEG file of an 8-bit RGB image as Pillow saves it at `quality`.
///
/// # Errors
/// An empty image or an error inside the C library (caught, not propagated as a panic).
pub fn encode_jpeg(
    rgb: &[u8],
    width: usize,
    height: usize,
    quality: u8,
) -> Result<Vec<u8>, String> {
    if width == 0 || height == 0 || rgb.len() != 3 * width * height {
        return Err(format!(
            "a {width}×{height} RGB image cannot be {} bytes long",
            rgb.len()
        ));
    }
    catch_unwind(AssertUnwindSafe(|| -> std::io::Result<Vec<u8>> {
        let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        c.set_fastest_defaults();
        c.set_size(width, height);
        c.set_quality(f32::from(quality));
        c.set_chroma_sampling_pixel_sizes((2, 2), (2, 2));
        let mut started = c.start_compress(Vec::new())?;
        started.write_scanlines(rgb)?;
        started.finish()
    }))
    .map_err(|_| "the JPEG encoder failed".to_string())?
    .map_err(|e| format!("the JPEG encoder failed: {e}"))
}

impl TensorReward for JpegSize {
    fn name(&self) -> &str {
        match self.goal {
            JpegGoal::Compressible => "jpeg_compressibility",
            JpegGoal::Incompressible => "jpeg_incompressibility",
        }
    }

    /// The size in kB (negated for compressibility); NaN for an image the encoder refuses
    /// (none of positive size), which stops a run as diverged rather than scoring it 0.
    fn score<B: Backend>(&self, images: Tensor<B, 4>, _prompts: &[String]) -> Tensor<B, 1> {
        let dims = images.dims();
        let [n, _, h, w] = dims;
        let device = images.device();
        let values = images
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .expect("images are floats");
        let sign = match self.goal {
            JpegGoal::Compressible => -1.0,
            JpegGoal::Incompressible => 1.0,
        };
        let scores: Vec<f32> = to_rgb8(&values, dims)
            .par_iter()
            .map(|rgb| match encode_jpeg(rgb, w, h, self.quality) {
                Ok(file) => (sign * file.len() as f64 / 1000.0) as f32,
                Err(_) => f32::NAN,
            })
            .collect();
        Tensor::from_data(TensorData::new(scores, [n]), &device)
    }

    fn differentiable(&self) -> bool {
        false
    }
}
