//! Images out of tensors: 8-bit RGB as diffusers' `numpy_to_pil` makes them, grids, PNG files.

use std::path::Path;

use burn::tensor::{backend::Backend, Tensor};
use image::{ImageFormat, RgbImage};

/// Images `[N, 3, H, W]` in [0, 1] as 8-bit RGB (×255, rounded, clamped).
pub fn to_rgb8<B: Backend>(images: Tensor<B, 4>) -> Vec<RgbImage> {
    let [n, c, h, w] = images.dims();
    assert_eq!(c, 3, "RGB images have 3 channels, not {c}");
    let values = images
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("float images");
    let plane = h * w;
    (0..n)
        .map(|i| {
            let base = i * 3 * plane;
            RgbImage::from_fn(w as u32, h as u32, |x, y| {
                let p = y as usize * w + x as usize;
                let px = |ch: usize| {
                    (values[base + ch * plane + p] * 255.0)
                        .round()
                        .clamp(0.0, 255.0) as u8
                };
                image::Rgb([px(0), px(1), px(2)])
            })
        })
        .collect()
}

/// Images of one size tiled row by row, `cols` per row.
pub fn grid(images: &[RgbImage], cols: usize) -> RgbImage {
    let Some(first) = images.first() else {
        return RgbImage::new(0, 0);
    };
    let (w, h) = first.dimensions();
    let cols = cols.clamp(1, images.len());
    let rows = images.len().div_ceil(cols);
    let mut out = RgbImage::new(w * cols as u32, h * rows as u32);
    for (i, img) in images.iter().enumerate() {
        let (x, y) = ((i % cols) as u32 * w, (i / cols) as u32 * h);
        image::imageops::replace(&mut out, img, i64::from(x), i64::from(y));
    }
    out
}

/// PNG bytes of an image.
pub fn png_bytes(img: &RgbImage) -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, ImageFormat::Png)
        .expect("PNG encoding into memory cannot fail");
    bytes.into_inner()
}

/// Writes an image as PNG, creating the parent directory.
///
/// # Errors
/// The file cannot be written (the message names it).
pub fn save_png(img: &RgbImage, path: &Path) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    img.save_with_format(path, ImageFormat::Png)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
