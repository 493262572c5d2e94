//! `bench fid A B`: the FID between two folders of images or saved statistics, as
//! `python -m pytorch_fid A B` computes it — pytorch-fid's Inception (`bench_models::inception`)
//! on the images in [0, 1], pool3 features, mean and covariance in f64, the Fréchet distance
//! by the symmetric route (`bench_metrics::frechet`). `--save-stats FOLDER OUT.npz` writes a
//! folder's statistics in pytorch-fid's format instead.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use clap::Args;

use bench_metrics::frechet::{frechet_distance, frechet_distance_of_features, Gaussian};
use bench_models::inception::{FidInception, FidResize, FEATURES, FID_WEIGHTS_SOURCE};

use crate::backend::HarnessBackend;
use crate::device::{DeviceSpec, OnDevice};
use crate::fid_stats;
use crate::image_folder::{image_bar, image_files, visit_images};

#[derive(Args, Debug)]
pub struct FidArgs {
    /// Two folders of PNG/JPEG images or `.npz` statistics (pytorch-fid's `mu` and `sigma`);
    /// with `--save-stats`, a folder and the `.npz` to write.
    #[arg(num_args = 2, required = true)]
    pub paths: Vec<PathBuf>,
    /// pytorch-fid's Inception weights.
    #[arg(long, default_value = "pt_inception-2015-12-05-6726825d.pth")]
    pub weights: PathBuf,
    /// How images reach 299²: pytorch-fid's bilinear resize of the float image, or clean-fid's
    /// antialiased bicubic of the 8-bit image (on pytorch-fid's network: not clean-fid's FID).
    #[arg(long, value_enum, default_value_t = ResizeArg::PytorchFid)]
    pub resize: ResizeArg,
    /// Images through the network at once.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,
    /// Write the statistics of the first path (a folder) to the second instead.
    #[arg(long)]
    pub save_stats: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Where the network runs: `cpu`, `cuda` (GPU 0) or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
}

/// `--resize`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeArg {
    PytorchFid,
    CleanFid,
}

impl From<ResizeArg> for FidResize {
    fn from(r: ResizeArg) -> Self {
        match r {
            ResizeArg::PytorchFid => FidResize::PytorchFid,
            ResizeArg::CleanFid => FidResize::CleanFid,
        }
    }
}

fn is_npz(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("npz"))
}

/// The network, loaded on first use (statistics files need none).
struct Network<'a, B: Backend> {
    weights: &'a Path,
    device: B::Device,
    model: Option<FidInception<B>>,
}

impl<B: Backend> Network<'_, B> {
    fn get(&mut self) -> Result<&FidInception<B>, String> {
        if self.model.is_none() {
            let model = FidInception::load(self.weights, &self.device).map_err(|e| {
                format!(
                    "--weights {}: {}; get {FID_WEIGHTS_SOURCE}",
                    self.weights.display(),
                    e.without_sd_source()
                )
            })?;
            self.model = Some(model);
        }
        Ok(self.model.as_ref().expect("loaded above"))
    }
}

/// The pool3 features of every image of `folder`, row-major `[N, 2048]` in f64.
fn folder_features<B: Backend>(
    folder: &Path,
    network: &mut Network<'_, B>,
    args: &FidArgs,
) -> Result<(Vec<f64>, usize), String> {
    let files = image_files(folder, &folder.display().to_string())?;
    let device = network.device.clone();
    let model = network.get()?;
    let bar = image_bar(
        files.len(),
        args.quiet,
        format!("Inception features of {}", folder.display()),
    );
    let mut features = Vec::with_capacity(files.len() * FEATURES);
    visit_images::<B>(&files, args.batch as usize, &device, |run, images| {
        let out = model
            .features_with(images, args.resize.into())
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .map_err(|e| format!("{e:?}"))?;
        features.extend(out.into_iter().map(f64::from));
        bar.inc(run.len() as u64);
        Ok(ControlFlow::Continue(()))
    })?;
    bar.finish_and_clear();
    Ok((features, files.len()))
}

/// The statistics of a path: read from an `.npz`, or computed from a folder.
fn statistics<B: Backend>(
    path: &Path,
    network: &mut Network<'_, B>,
    args: &FidArgs,
) -> Result<Gaussian, String> {
    if is_npz(path) {
        return fid_stats::read(path);
    }
    let (features, n) = folder_features(path, network, args)?;
    Gaussian::fit(&features, n, FEATURES).map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs the command: prints `FID: <value>` (full f64 precision) or writes the statistics.
///
/// # Errors
/// Unreadable paths, weights or images, a folder with fewer than two images, statistics of
/// different widths.
pub fn fid(args: &FidArgs) -> Result<(), String> {
    args.device.clone().single()?.run(Fid(args))?
}

/// `bench fid` to run on the backend of `--device`.
struct Fid<'a>(&'a FidArgs);

impl OnDevice for Fid<'_> {
    type Output = Result<(), String>;

    fn run<H: HarnessBackend>(self, devices: Vec<H::Device>) -> Result<(), String> {
        let device = devices.into_iter().next().ok_or("no device")?;
        fid_on::<H::InnerBackend>(self.0, device)
    }
}

fn fid_on<B: Backend>(args: &FidArgs, device: B::Device) -> Result<(), String> {
    let mut network = Network::<B> {
        weights: &args.weights,
        device,
        model: None,
    };
    let (a, b) = (&args.paths[0], &args.paths[1]);
    if args.save_stats {
        if is_npz(a) {
            return Err(format!(
                "--save-stats: {} is already statistics; give a folder of images",
                a.display()
            ));
        }
        let stats = statistics(a, &mut network, args)?;
        fid_stats::write(b, &stats)?;
        eprintln!("statistics of {} written to {}", a.display(), b.display());
        return Ok(());
    }
    let both = |e: String| format!("{} and {}: {e}", a.display(), b.display());
    let value = if is_npz(a) || is_npz(b) {
        let first = statistics(a, &mut network, args)?;
        let second = statistics(b, &mut network, args)?;
        frechet_distance(&first, &second).map_err(both)?
    } else {
        // Two folders: the distance from the feature rows (an N × N SVD when N < d).
        let (first, n1) = folder_features(a, &mut network, args)?;
        let (second, n2) = folder_features(b, &mut network, args)?;
        frechet_distance_of_features(&first, n1, &second, n2, FEATURES).map_err(both)?
    };
    println!("FID: {value}");
    Ok(())
}
