//! The `bench` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::compute_pool::ComputePool;
use crate::plugins::Plugins;
use crate::table::{aggregate, collect, notes, render, Format};

/// Reward finetuning of diffusion models: run algorithm × reward × seed sweeps, resume them
/// after a crash, and tabulate the results.
#[derive(Parser, Debug)]
#[command(name = "bench", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run every run of a sweep file (RON). Finished runs are skipped, interrupted ones resume
    /// from their last checkpoint; prints the results table at the end.
    Run(Box<crate::run_command::RunArgs>),
    /// Print an sbatch script that runs a sweep as a Slurm job array, one shard per task.
    Slurm(crate::slurm::SlurmArgs),
    /// Aggregate finished runs below a directory: mean ± std over seeds per
    /// (reward, algorithm) of the final evaluation.
    Table {
        /// A sweep's results directory (results/quickstart) or a results root.
        dir: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Markdown)]
        format: Format,
        /// Show the evaluation after this many epochs (0: the untrained base model) instead
        /// of the final one.
        #[arg(long)]
        epoch: Option<usize>,
    },
    /// Sample images from an SD v1.x diffusers folder, optionally with a LoRA, from seeded
    /// noise or from initial latents stored in a file (`--noise`).
    Sample(Box<crate::sample::SampleArgs>),
    /// Score every image of a folder with a reward: CSV `file,score` on stdout, sorted by
    /// file name (what to check before putting a reward in a sweep).
    Score(Box<crate::score::ScoreArgs>),
    /// FID between two folders of images or `.npz` statistics, as `python -m pytorch_fid`
    /// computes it (prints `FID: <value>`); `--save-stats FOLDER OUT.npz` writes statistics.
    Fid(Box<crate::fid::FidArgs>),
    /// Check a model folder or a reward's weight files, from their headers: which files were
    /// found, which are missing or do not fit the networks, and where to get them.
    Doctor {
        /// A diffusers folder or single file of SD v1.x (default `sd-v1-5` when no reward is
        /// named).
        #[arg(long)]
        model: Option<PathBuf>,
        /// A reward (`bench list`) whose weight files to check.
        #[arg(long)]
        reward: Option<String>,
        /// The reward's parameters in RON, as in a sweep: `--params '(clip: "clip-l14")'`.
        #[arg(long, requires = "reward")]
        params: Option<String>,
        /// pytorch-fid's Inception weights (`pt_inception-2015-12-05-6726825d.pth`) to check.
        #[arg(long)]
        fid_weights: Option<PathBuf>,
        /// The dreamsim package's cache folder: every DreamSim model whose files are there is
        /// loaded (LoRA merged) and reported.
        #[arg(long)]
        dreamsim: Option<PathBuf>,
        /// Devices to check (`cuda`, `cuda:0,1`, `cpu`): on each, a small product and a
        /// reduction run and are read back — what a cluster job needs before it is submitted.
        #[arg(long)]
        device: Option<crate::device::DeviceSpec>,
    },
    /// List the algorithms, rewards and metrics this binary knows.
    List,
}

/// Runs the CLI with the given plugins; returns the process exit code.
pub fn main_with(plugins: Plugins) -> ExitCode {
    crate::allocator::tune_allocator();
    let cli = Cli::parse();
    match dispatch(cli, &plugins) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli, plugins: &Plugins) -> Result<(), String> {
    match cli.command {
        Command::Run(args) => {
            let device = args.device.clone();
            device.run(crate::run_command::RunSweep {
                args: *args,
                plugins,
            })?
        }
        Command::Table { dir, format, epoch } => {
            let found = collect(&dir, epoch)?;
            for note in notes(&found) {
                eprintln!("{note}");
            }
            if found.runs.is_empty() {
                return Err(format!(
                    "no finished runs to tabulate below {}",
                    dir.display()
                ));
            }
            print!("{}", render(&aggregate(&found.runs), format));
            Ok(())
        }
        // One job each, computed on a pool's worker (see `compute_pool` for why).
        Command::Sample(args) => ComputePool::whole_machine().run(|| crate::sample::sample(&args)),
        Command::Score(args) => {
            ComputePool::whole_machine().run(|| crate::score::score(&args, plugins))
        }
        Command::Fid(args) => ComputePool::whole_machine().run(|| crate::fid::fid(&args)),
        Command::Slurm(args) => crate::slurm::slurm(&args, plugins),
        Command::Doctor {
            model,
            reward,
            params,
            fid_weights,
            dreamsim,
            device,
        } => {
            let mut bad = Vec::new();
            let model = match (&model, &reward, &fid_weights, &dreamsim, &device) {
                (None, None, None, None, None) => Some(PathBuf::from("sd-v1-5")),
                _ => model,
            };
            if let Some(device) = device {
                if !crate::doctor::doctor_device(&device) {
                    bad.push(format!("`{device}` is not usable"));
                }
            }
            if let Some(model) = model {
                if !crate::doctor::doctor(&model)? {
                    bad.push(format!("{} is not a usable SD v1.x model", model.display()));
                }
            }
            if let Some(name) = reward {
                if !crate::doctor::doctor_reward(&name, params.as_deref(), plugins)? {
                    bad.push(format!("reward `{name}` lacks usable weight files"));
                }
            }
            if let Some(path) = fid_weights {
                if !crate::doctor::doctor_fid_weights(&path)? {
                    bad.push(format!(
                        "{} are not usable FID Inception weights",
                        path.display()
                    ));
                }
            }
            if let Some(folder) = dreamsim {
                if !crate::doctor::doctor_dreamsim(&folder)? {
                    bad.push(format!(
                        "{} holds no usable DreamSim model",
                        folder.display()
                    ));
                }
            }
            if bad.is_empty() {
                Ok(())
            } else {
                Err(format!("{} (see above)", bad.join("; ")))
            }
        }
        Command::List => {
            let plugins = plugins.catalog();
            println!("algorithms (every environment):");
            for (n, a) in plugins.objectives.describe() {
                println!("  {n:<14} {a}");
            }
            println!("rewards:");
            let rewards = plugins.rewards.describe();
            // Names aligned in one column, however long (`jpeg_incompressibility`).
            let width = rewards.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
            for (n, a) in rewards {
                let kind = plugins.rewards.get(n).map(|e| e.samples.to_string());
                println!("  {n:<width$} {a} [{}]", kind.unwrap_or_default());
            }
            println!("metrics (eval.metrics):");
            let metrics = plugins.metrics.describe();
            let width = metrics.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
            for (n, a) in metrics {
                println!("  {n:<width$} {a}");
            }
            println!("toy2d scenes:");
            for (n, a) in bench_envs::toy2d::scenes::SCENES {
                println!("  {n:<12} {a}");
            }
            Ok(())
        }
    }
}
