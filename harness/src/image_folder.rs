//! Folders of images as the commands read them (`bench score`, `bench fid`): the PNG and JPEG
//! files directly inside, sorted by name, each decoded to 8-bit RGB and then to `[3, H, W]`
//! values in [0, 1] (what torchvision's `ToTensor` gives the reference tools).

use std::ops::{ControlFlow, Range};
use std::path::{Path, PathBuf};

use burn::tensor::{backend::Backend, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

/// The image files of `dir`, sorted by name; `what` names the argument in errors.
///
/// # Errors
/// An unreadable folder, or one without images.
pub fn image_files(dir: &Path, what: &str) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("{what}: cannot read folder {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    ["png", "jpg", "jpeg"].contains(&e.to_ascii_lowercase().as_str())
                })
        })
        .collect();
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    if files.is_empty() {
        return Err(format!(
            "{what}: no .png, .jpg or .jpeg files in {}",
            dir.display()
        ));
    }
    Ok(files)
}

/// An image as `[3, H, W]` values in [0, 1] with its size `[H, W]`.
///
/// # Errors
/// A file that cannot be read or decoded.
pub fn load_image(file: &Path) -> Result<(Vec<f32>, [usize; 2]), String> {
    let image = image::open(file)
        .map_err(|e| format!("cannot read image {}: {e}", file.display()))?
        .to_rgb8();
    let (w, h) = (image.width() as usize, image.height() as usize);
    let mut planar = vec![0.0f32; 3 * h * w];
    for (p, pixel) in image.pixels().enumerate() {
        for c in 0..3 {
            planar[c * h * w + p] = f32::from(pixel[c]) / 255.0;
        }
    }
    Ok((planar, [h, w]))
}

/// The runs of equal image size in `sizes`, as index ranges (images of different sizes cannot
/// share a batch).
fn equal_size_runs(sizes: &[[usize; 2]]) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    while start < sizes.len() {
        let end = (start..sizes.len())
            .find(|&i| sizes[i] != sizes[start])
            .unwrap_or(sizes.len());
        runs.push(start..end);
        start = end;
    }
    runs
}

/// The images of `files` as tensors `[n, 3, H, W]` in [0, 1]: `batch` files decoded at once
/// (in parallel), each batch cut into runs of equal size; `visit` gets each run's indices into
/// `files` with its tensor, and may stop the walk.
///
/// # Errors
/// An image that cannot be decoded, or `visit`'s error.
pub fn visit_images<B: Backend>(
    files: &[PathBuf],
    batch: usize,
    device: &B::Device,
    mut visit: impl FnMut(Range<usize>, Tensor<B, 4>) -> Result<ControlFlow<()>, String>,
) -> Result<(), String> {
    for (c, chunk) in files.chunks(batch.max(1)).enumerate() {
        let loaded = chunk
            .par_iter()
            .map(|f| load_image(f))
            .collect::<Result<Vec<_>, String>>()?;
        let sizes: Vec<[usize; 2]> = loaded.iter().map(|(_, s)| *s).collect();
        for run in equal_size_runs(&sizes) {
            let [h, w] = sizes[run.start];
            let values: Vec<f32> = loaded[run.clone()]
                .iter()
                .flat_map(|(v, _)| v.iter().copied())
                .collect();
            let images = Tensor::from_data(TensorData::new(values, [run.len(), 3, h, w]), device);
            let offset = c * batch.max(1);
            if visit(offset + run.start..offset + run.end, images)?.is_break() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// A progress bar over `n` images on stderr (hidden with `--quiet`).
pub fn image_bar(n: usize, quiet: bool, message: String) -> ProgressBar {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(n as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} images ({eta})")
            .expect("a valid template"),
    );
    bar.set_message(message);
    bar
}
