//! `bench doctor`: which model files were found, which are missing or do not fit, and where
//! users get them; checked from the files' headers, so it answers at once even for SD v1.5.

use std::path::Path;

use burn::tensor::{ElementConversion, Tensor};

use bench_models::sd::components::{check_model, ComponentCheck};
use bench_models::sd::ModelLayout;
use bench_models::weights::SD15_SOURCE;

use crate::backend::HarnessBackend;
use crate::device::{DeviceSpec, OnDevice};
use crate::plugins::Plugins;
use crate::score::resolve_params;

/// Prints the report for a model (diffusers folder or single file); `Ok(true)` when everything
/// needed is there.
///
/// # Errors
/// Never for a bad folder (that is the report's business); kept for symmetry with the CLI.
pub fn doctor(model: &Path) -> Result<bool, String> {
    let check = check_model(model);
    let layout = match check.layout {
        Some(ModelLayout::DiffusersFolder) => "diffusers folder",
        Some(ModelLayout::SingleFile) => "single-file checkpoint, original SD key names",
        None => "not loadable",
    };
    println!("model: {} ({layout})", model.display());
    let mut ok = true;
    for (part, check) in check.parts {
        match check {
            Ok(ComponentCheck::Found) => println!("  ok       {part}"),
            Ok(ComponentCheck::BuiltIn(what)) => println!("  ok       {part}: {what}"),
            Ok(ComponentCheck::InFile(p)) if p.report.problems.is_empty() => println!(
                "  ok       {part}: `{}*` ({}; {}, {} tensors, {} parameters)",
                p.prefix,
                p.config,
                p.report.dtypes.join("/"),
                p.report.tensors,
                p.report.parameters
            ),
            Ok(ComponentCheck::InFile(p)) => {
                ok = false;
                println!(
                    "  MISFIT   {part}: `{}*` ({}) has {} tensor(s) that do not fit:",
                    p.prefix,
                    p.config,
                    p.report.problems.len()
                );
                for problem in p.report.problems.iter().take(10) {
                    println!("             {problem}");
                }
                if p.report.problems.len() > 10 {
                    println!("             … and {} more", p.report.problems.len() - 10);
                }
            }
            Ok(ComponentCheck::Weights(report)) if report.problems.is_empty() => println!(
                "  ok       {part}: {} ({}, {} tensors, {} parameters)",
                report.file.display(),
                report.dtypes.join("/"),
                report.tensors,
                report.parameters
            ),
            Ok(ComponentCheck::Weights(report)) => {
                ok = false;
                println!(
                    "  MISFIT   {part}: {} has {} tensor(s) that do not fit:",
                    report.file.display(),
                    report.problems.len()
                );
                for p in report.problems.iter().take(10) {
                    println!("             {p}");
                }
                if report.problems.len() > 10 {
                    println!("             … and {} more", report.problems.len() - 10);
                }
            }
            Err(e) => {
                ok = false;
                // The missing-file message ends with where to get SD; print that once below.
                println!("  MISSING  {part}: {}", e.without_sd_source());
            }
        }
    }
    if check.layout == Some(ModelLayout::DiffusersFolder) {
        let scheduler = model.join("scheduler/scheduler_config.json");
        if scheduler.is_file() {
            println!("  ok       scheduler: {}", scheduler.display());
        } else {
            // Optional: bench's samplers carry SD's schedule; the file only sets DPM-Solver's
            // timestep spacing.
            println!(
                "  note     scheduler: {} is missing; `bench sample --sampler dpm-solver` then \
                 uses \"linspace\" timesteps (SD v1.5's own config says the same)",
                scheduler.display()
            );
        }
    }
    if !check.ignored.is_empty() {
        let groups: Vec<String> = check
            .ignored
            .iter()
            .map(|(group, n)| format!("{group} ({n})"))
            .collect();
        println!("  ignored  tensors of no component: {}", groups.join(", "));
    }
    let cuda = if cfg!(feature = "cuda") {
        "built in (`--device cuda` checks the driver and the GPUs)"
    } else {
        "not built into this binary (`cargo build --release --features cuda`)"
    };
    println!(
        "backend: burn 0.21 CPU (flex), {} threads; GPU (cuda): {cuda}",
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    );
    if ok {
        println!(
            "everything `bench sample --model {}` needs is there",
            model.display()
        );
    } else {
        println!("get SD v1.5 from {SD15_SOURCE}");
    }
    Ok(ok)
}

/// Prints the report for a reward's weight files (those its parameters name); `Ok(true)` when
/// every one is there and fits.
///
/// # Errors
/// An unknown reward or parameters that do not parse.
pub fn doctor_reward(name: &str, params: Option<&str>, plugins: &Plugins) -> Result<bool, String> {
    let plugins = plugins.catalog();
    let entry = plugins
        .rewards
        .get(name)
        .map_err(|e| format!("--reward: {e}"))?;
    let resolved = resolve_params(&entry.params, params)?;
    let checks = entry.check_files(&resolved)?;
    println!("reward: {name}");
    if checks.is_empty() {
        println!("  ok       no weight files");
    }
    let mut ok = true;
    for check in checks {
        match check.outcome {
            Ok(found) => println!("  ok       {}: {found}", check.what),
            Err(problem) => {
                ok = false;
                let kind = if check.path.exists() {
                    "MISFIT "
                } else {
                    "MISSING"
                };
                println!(
                    "  {kind}  {} ({}): {}",
                    check.what,
                    check.path.display(),
                    problem.replace('\n', "\n           ")
                );
            }
        }
    }
    Ok(ok)
}

/// `bench doctor --fid-weights FILE`: pytorch-fid's Inception weights against the network,
/// from the file's tensor list.
///
/// # Errors
/// Never for a bad file (that is reported and the result is `false`).
pub fn doctor_fid_weights(path: &Path) -> Result<bool, String> {
    use bench_models::inception::{FidInception, FID_WEIGHTS_SOURCE};
    println!("FID Inception weights:");
    let checked = FidInception::<burn::backend::Flex>::check(path, &Default::default());
    let problem = match checked {
        Ok(report) if report.problems.is_empty() => {
            println!(
                "  ok       {} ({}, {} parameters)",
                path.display(),
                report.dtypes.join("/"),
                report.parameters
            );
            return Ok(true);
        }
        Ok(report) => report
            .problems
            .iter()
            .take(10)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n           "),
        Err(e) => e.without_sd_source(),
    };
    let kind = if path.exists() { "MISFIT " } else { "MISSING" };
    println!(
        "  {kind}  {}: {problem}\n           get {FID_WEIGHTS_SOURCE}",
        path.display()
    );
    Ok(false)
}

/// `bench doctor --dreamsim FOLDER`: each DreamSim model whose files are in the dreamsim
/// package's cache folder, loaded with its LoRA merged (the first file of a model missing: not
/// reported; a later one missing, or any misfit: named). True when one model loads and none
/// fails.
///
/// # Errors
/// Never for a bad folder (that is reported and the result is `false`).
pub fn doctor_dreamsim(folder: &Path) -> Result<bool, String> {
    use bench_models::dreamsim::{DreamSim, DreamSimVariant, DREAMSIM_SOURCE};
    println!("DreamSim models in {}:", folder.display());
    let (mut loaded, mut failed) = (0, 0);
    for variant in [
        DreamSimVariant::Ensemble,
        DreamSimVariant::DinoVitb16,
        DreamSimVariant::ClipVitb32,
        DreamSimVariant::OpenClipVitb32,
    ] {
        let (_, lora) = variant.files();
        if !folder.join(lora).exists() {
            continue;
        }
        match DreamSim::<burn::backend::Flex>::load(folder, variant, &Default::default()) {
            Ok(model) => {
                loaded += 1;
                let widths: Vec<String> = model
                    .branches
                    .iter()
                    .map(|b| format!("{:?} {}", b.kind, b.width()))
                    .collect();
                println!("  ok       {variant:?} ({})", widths.join(" + "));
            }
            Err(e) => {
                failed += 1;
                println!("  MISFIT   {variant:?}: {e}");
            }
        }
    }
    if loaded + failed == 0 {
        println!(
            "  MISSING  no DreamSim adapter folder (ensemble_lora/, …); expected {}; get \
             {DREAMSIM_SOURCE}",
            DreamSimVariant::Ensemble.required_files().join(", ")
        );
    }
    Ok(loaded > 0 && failed == 0)
}

/// On each device of `spec`: a matrix product and a reduction, read back and checked against
/// their exact value (on CUDA this compiles and runs kernels). Prints a line per device; `true`
/// when every one passed.
pub fn doctor_device(spec: &DeviceSpec) -> bool {
    match spec.run(DeviceCheck) {
        Ok(lines) => {
            let mut ok = true;
            for (device, result) in lines {
                match result {
                    Ok(()) => println!("  ok       {device}: a product and a reduction ran"),
                    Err(e) => {
                        ok = false;
                        println!("  FAILED   {device}: {e}");
                    }
                }
            }
            ok
        }
        Err(e) => {
            println!("  FAILED   {spec}: {e}");
            false
        }
    }
}

/// The check of [`doctor_device`] on one backend's devices.
struct DeviceCheck;

impl OnDevice for DeviceCheck {
    type Output = Vec<(String, Result<(), String>)>;

    fn run<B: HarnessBackend>(self, devices: Vec<B::Device>) -> Self::Output {
        devices
            .iter()
            .map(|device| {
                // ones(64×64)·ones(64×64) sums to 64³ exactly in f32. A backend that panics
                // (a driver or kernel-compiler failure) is reported, not propagated.
                let sum = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let a = Tensor::<B::InnerBackend, 2>::ones([64, 64], device);
                    a.clone().matmul(a).sum().into_scalar().elem::<f32>()
                }));
                let result = match sum {
                    Ok(262_144.0) => Ok(()),
                    Ok(s) => Err(format!("the product summed to {s}, not 262144")),
                    Err(panic) => Err(panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "the backend panicked".into())),
                };
                (format!("{device:?}"), result)
            })
            .collect()
    }
}
