//! `bench sample`: images from an SD folder (optionally with a LoRA), with the samplers of
//! diffusers' pipelines, from seeded noise or from initial latents stored in a file, so that an
//! image can be compared with another implementation's from the same noise.

use std::path::{Path, PathBuf};

use burn::tensor::{backend::Backend, Tensor, TensorData};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{rngs::StdRng, SeedableRng};

use bench_envs::dpm_solver::{DpmSolver, DpmSolverKind, TimestepSpacing};
use bench_envs::sd::multistep::dpm_solve;
use bench_envs::sd::{read_prompt_file, SdModel, SdPipeline};
use bench_envs::{
    rollout_from, Denoiser, DiffusionModel, SamplerConfig, SamplerKind, ScheduleConfig, Scheduler,
};
use bench_metrics::images::{grid, save_png, to_rgb8};
use bench_models::sd::UNetLora;
use bench_models::Precision;

use crate::backend::HarnessBackend;
use crate::device::{DeviceSpec, OnDevice};
use crate::torch_noise::torch_randn;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SamplerChoice {
    /// DDIM ("leading" timesteps, as SD's pipeline); deterministic with `--eta 0`.
    Ddim,
    /// DDPM ancestral sampling.
    Ddpm,
    /// DPM-Solver++ (2M), what PAG samples with at 20 steps.
    DpmSolver,
    /// SDE-DPM-Solver++ (2M, stochastic).
    SdeDpmSolver,
    /// SDE-DPM-Solver++, first order, ending at σ_min: the MDP ∇-GFlowNet trains on (sampler
    /// kind `SdeDpmSolver` in sweeps).
    SdeDpmSolver1,
}

#[derive(Args, Debug)]
pub struct SampleArgs {
    /// SD v1.x: a diffusers folder or a single-file .safetensors checkpoint (see `bench doctor`).
    #[arg(long, default_value = "sd-v1-5")]
    pub model: PathBuf,
    /// The prompt (repeat for several).
    #[arg(long, required_unless_present = "prompt_file")]
    pub prompt: Vec<String>,
    /// A file of prompts, one per line.
    #[arg(long)]
    pub prompt_file: Option<PathBuf>,
    /// CFG's unconditional prompt.
    #[arg(long, default_value = "")]
    pub negative_prompt: String,
    /// Images per prompt.
    #[arg(long, default_value_t = 1)]
    pub per_prompt: usize,
    /// The initial latents are torch's CPU `randn` for this seed, as diffusers draws them with
    /// `generator=torch.Generator().manual_seed(SEED)`; the per-step noise of stochastic
    /// samplers is bench's own.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// Classifier-free guidance weight (1: none).
    #[arg(long, default_value_t = 7.5, value_parser = finite)]
    pub cfg: f64,
    #[arg(long, value_enum, default_value_t = SamplerChoice::Ddim)]
    pub sampler: SamplerChoice,
    /// DDIM's stochasticity (0: deterministic, diffusers' default).
    #[arg(long, default_value_t = 0.0, value_parser = finite)]
    pub eta: f64,
    /// Image side in pixels (default: the model's own, 512 for SD v1.5).
    #[arg(long)]
    pub resolution: Option<usize>,
    /// A LoRA file (diffusers, peft or attention-processor key names), e.g. a run's
    /// `policy/pytorch_lora_weights.safetensors`.
    #[arg(long)]
    pub lora: Option<PathBuf>,
    /// The LoRA's alpha (default: its rank, i.e. scale 1, as diffusers reads such files).
    #[arg(long, requires = "lora")]
    pub lora_alpha: Option<f64>,
    /// Initial latents `[N, 4, h, w]` (f32 safetensors: the tensor `latents`, or the file's
    /// only tensor) instead of seeded noise; N = prompts × per-prompt images.
    #[arg(long)]
    pub noise: Option<PathBuf>,
    /// Images sampled per batch.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Output PNG (its folder must exist). Several images go to `<stem>-<i>.png`, or into one
    /// grid with `--grid`.
    #[arg(long, default_value = "sample.png")]
    pub out: PathBuf,
    /// One grid image (a row per prompt) instead of one file per image.
    #[arg(long)]
    pub grid: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// The precision of the text encoder, UNet and VAE: `f32`, `bf16` or `f16` (a LoRA stays
    /// f32).
    #[arg(long, default_value = "f32")]
    pub dtype: Precision,
    /// Where to sample: `cpu`, `cuda` (GPU 0) or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
}

/// A finite number, for flags where NaN or infinity would make no image.
fn finite(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(v) => Err(format!("{v} is not finite")),
        Err(e) => Err(e.to_string()),
    }
}

/// Refuses an output that could not be written, before any sampling: a format other than PNG
/// or a folder that does not exist.
fn check_output(out: &Path) -> Result<(), String> {
    let png = out
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if !png {
        return Err(format!(
            "--out {}: images are written as PNG; name a .png file",
            out.display()
        ));
    }
    match out.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) if !dir.is_dir() => Err(format!(
            "--out {}: the folder {} does not exist",
            out.display(),
            dir.display()
        )),
        _ => Ok(()),
    }
}

/// Runs `bench sample`.
///
/// # Errors
/// Bad arguments, missing weights or files (named), an unwritable output.
pub fn sample(args: &SampleArgs) -> Result<(), String> {
    let mut prompts = args.prompt.clone();
    if let Some(file) = &args.prompt_file {
        prompts.extend(read_prompt_file(file).map_err(|e| format!("--prompt-file: {e}"))?);
    }
    if prompts.is_empty() || args.per_prompt == 0 || args.batch == 0 {
        return Err("give at least one prompt; --per-prompt and --batch must be positive".into());
    }
    if args.steps == 0 || args.steps > 1000 {
        return Err(format!("--steps {} must be in 1..=1000", args.steps));
    }
    if args.eta < 0.0 {
        return Err(format!("--eta {} must be ≥ 0", args.eta));
    }
    check_output(&args.out)?;
    let sampler = SamplerConfig {
        kind: match args.sampler {
            SamplerChoice::Ddpm => SamplerKind::Ddpm,
            SamplerChoice::SdeDpmSolver1 => SamplerKind::SdeDpmSolver,
            _ => SamplerKind::Ddim,
        },
        eta: args.eta,
        guidance: args.cfg,
        schedule: ScheduleConfig {
            inference_steps: args.steps,
            ..ScheduleConfig::default()
        },
        ..SamplerConfig::default()
    };
    args.device.clone().single()?.run(SampleOn {
        args,
        prompts,
        sampler,
    })?
}

/// `bench sample`'s arguments, checked, to run on the backend of `--device`.
struct SampleOn<'a> {
    args: &'a SampleArgs,
    prompts: Vec<String>,
    sampler: SamplerConfig,
}

impl OnDevice for SampleOn<'_> {
    type Output = Result<(), String>;

    fn run<H: HarnessBackend>(self, devices: Vec<H::Device>) -> Result<(), String> {
        let device = devices.into_iter().next().ok_or("no device")?;
        sample_on::<H::InnerBackend>(self.args, &self.prompts, self.sampler, &device)
    }
}

fn sample_on<B: Backend>(
    args: &SampleArgs,
    prompts: &[String],
    sampler: SamplerConfig,
    device: &B::Device,
) -> Result<(), String> {
    let pipeline = SdPipeline::<B>::load_in(&args.model, args.dtype, device)
        .map_err(|e| format!("--model: {e}"))?;
    let resolution = args
        .resolution
        .unwrap_or_else(|| pipeline.native_resolution());
    bench_core::validate::fits_in_memory(
        &format!("--resolution {resolution} with --batch {}", args.batch),
        pipeline.attention_bytes(resolution, 2 * args.batch),
    )?;
    let model = SdModel::new(
        &pipeline,
        prompts,
        &args.negative_prompt,
        resolution,
        Scheduler::for_sampling(sampler)?,
    )
    .map_err(|e| format!("--{e}"))?;
    let lora = match &args.lora {
        Some(file) => Some(
            UNetLora::load(&model.unet().lora_layout(), file, args.lora_alpha, device)
                .map_err(|e| format!("--lora: {e}"))?,
        ),
        None => None,
    };
    let net = match &lora {
        Some(l) => Denoiser::Policy(l),
        None => Denoiser::Base,
    };
    let rows: Vec<usize> = (0..prompts.len())
        .flat_map(|p| std::iter::repeat_n(p, args.per_prompt))
        .collect();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let initial = match &args.noise {
        Some(file) => read_latents(file, rows.len(), model.latent_shape(), device)?,
        None => {
            let values = torch_randn(args.seed, rows.len() * model.dims())?;
            Tensor::from_data(TensorData::new(values, [rows.len(), model.dims()]), device)
        }
    };
    let solver = match args.sampler {
        SamplerChoice::DpmSolver => Some(DpmSolverKind::Ode),
        SamplerChoice::SdeDpmSolver => Some(DpmSolverKind::Sde),
        _ => None,
    }
    .map(|kind| {
        DpmSolver::with_spacing(
            kind,
            &model.scheduler().config().schedule,
            folder_spacing(&args.model)?,
        )
    })
    .transpose()?;

    let bar = progress(args.quiet, rows.len() * args.steps);
    let mut pictures = Vec::with_capacity(rows.len());
    for (b, chunk) in rows.chunks(args.batch).enumerate() {
        let x = initial.clone().narrow(0, b * args.batch, chunk.len());
        let n = chunk.len() as u64;
        let x0 = match &solver {
            Some(solver) => dpm_solve(&model, net, solver, x, chunk, &mut rng, |_| bar.inc(n)),
            // DDIM, DDPM or first-order SDE-DPM-Solver++: the Markov rollout training uses.
            None => rollout_from(&model, net, x, chunk.to_vec(), &mut rng, |_| bar.inc(n))
                .final_states(),
        };
        pictures.extend(to_rgb8(model.decode(x0)));
    }
    bar.finish_and_clear();
    write_images(&pictures, args)
}

fn progress(quiet: bool, total: usize) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} denoising steps, eta {eta}")
            .expect("valid template"),
    );
    bar
}

/// The timestep spacing DPM-Solver takes from the folder's scheduler config, as diffusers'
/// `DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)` does ("linspace" when the
/// config names none, as SD v1.4's). A single-file checkpoint has no scheduler config: diffusers'
/// `from_single_file` then uses SD v1.5's repository config, whose PNDM scheduler names no
/// spacing either, so "linspace" too (tools/fixtures/make_sd_tiny.py checks this on diffusers).
fn folder_spacing(model: &Path) -> Result<TimestepSpacing, String> {
    if model.is_file() {
        return Ok(TimestepSpacing::Linspace);
    }
    let path = model.join("scheduler/scheduler_config.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(TimestepSpacing::Linspace);
    };
    let config: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    match config.get("timestep_spacing").and_then(|v| v.as_str()) {
        None | Some("linspace") => Ok(TimestepSpacing::Linspace),
        Some("leading") => Ok(TimestepSpacing::Leading),
        Some(other) => Err(format!(
            "{}: timestep_spacing \"{other}\" is not supported by the DPM-Solver here",
            path.display()
        )),
    }
}

/// Initial latents from a safetensors file, checked against the expected shape.
fn read_latents<B: Backend>(
    file: &Path,
    n: usize,
    latent: [usize; 3],
    device: &B::Device,
) -> Result<Tensor<B, 2>, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("--noise {}: {e}", file.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| format!("--noise {}: {e}", file.display()))?;
    let names = st.names();
    let name = if names.contains(&"latents") {
        "latents".to_string()
    } else if names.len() == 1 {
        names[0].to_string()
    } else {
        return Err(format!(
            "--noise {}: no tensor `latents` among {} tensors",
            file.display(),
            names.len()
        ));
    };
    let view = st.tensor(&name).map_err(|e| e.to_string())?;
    let expected = [n, latent[0], latent[1], latent[2]];
    if view.dtype() != safetensors::Dtype::F32 || view.shape() != expected {
        return Err(format!(
            "--noise {}: `{name}` is {:?} {:?}; expected F32 {expected:?} (prompts × per-prompt, \
             channels, resolution / 8)",
            file.display(),
            view.dtype(),
            view.shape()
        ));
    }
    let values: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    let d = latent.iter().product();
    Ok(Tensor::from_data(TensorData::new(values, [n, d]), device))
}

fn write_images(pictures: &[image::RgbImage], args: &SampleArgs) -> Result<(), String> {
    if pictures.len() == 1 || args.grid {
        let img = if pictures.len() == 1 {
            pictures[0].clone()
        } else {
            grid(pictures, args.per_prompt)
        };
        save_png(&img, &args.out)?;
        println!("{}", args.out.display());
        return Ok(());
    }
    let stem = args
        .out
        .file_stem()
        .map_or("sample".into(), |s| s.to_string_lossy().to_string());
    for (i, img) in pictures.iter().enumerate() {
        let path = args.out.with_file_name(format!("{stem}-{i:03}.png"));
        save_png(img, &path)?;
        println!("{}", path.display());
    }
    Ok(())
}
