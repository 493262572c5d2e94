//! `bench run`: plan a sweep on the devices asked for, keep this shard's runs, run them, and
//! print the table.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use crate::backend::HarnessBackend;
use crate::device::{DeviceSpec, OnDevice};
use crate::plan::plan_on;
use crate::plugins::Plugins;
use crate::progress::Progress;
use crate::runner::{execute, Summary};
use crate::shard::Shard;
use crate::table::{aggregate, collect, notes, render, Format};

/// Run every run of a sweep file (RON). Finished runs are skipped, interrupted ones resume
/// from their last checkpoint; prints the results table at the end.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The sweep file, e.g. configs/quickstart.ron.
    pub sweep: PathBuf,
    /// Where results go: <results>/<sweep name>/<run id>/.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// No progress bars or per-run lines (for batch jobs); errors still go to stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Runs trained at once (default: the number of CPU cores on the CPU, one per GPU on
    /// GPUs). Results do not depend on it.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Validate the sweep and list its runs' directories; run and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run only part I of N of the sweep's runs (I from 0; runs assigned by id, so every
    /// machine agrees); read from SLURM_ARRAY_TASK_ID/COUNT in a Slurm array job.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Where runs train: `cpu`, `cuda` (GPU 0), `cuda:N`, or several GPUs (`cuda:0,1`, or
    /// `--devices 0,1`) on which concurrent runs are placed in turn. Results do not depend
    /// on the placement.
    #[arg(long, alias = "devices", default_value = "cpu", value_name = "DEVICE")]
    pub device: DeviceSpec,
    /// Devices each run trains on at once (data parallelism: rollouts and, for the objectives
    /// that allow it, steps split by rows; gradients summed on the first). Equal, up to float
    /// reduction order, to one device with the same batches. On `cpu`, that many copies of
    /// the CPU device (for testing: they share the cores).
    #[arg(long, default_value_t = 1, value_name = "K",
          value_parser = clap::value_parser!(u64).range(1..=64))]
    pub devices_per_run: u64,
}

/// `bench run` with its arguments, to run on the backend of `--device`.
pub struct RunSweep<'a> {
    pub args: RunArgs,
    pub plugins: &'a Plugins,
}

impl OnDevice for RunSweep<'_> {
    type Output = Result<(), String>;

    fn run<B: HarnessBackend>(self, devices: Vec<B::Device>) -> Result<(), String> {
        let Self { args, plugins } = self;
        // At most 64 (clap's range): the cast is exact.
        let per_run = args.devices_per_run as usize;
        let devices = match args.device {
            DeviceSpec::Cpu if per_run > 1 => devices
                .first()
                .map_or_else(Vec::new, |d| vec![d.clone(); per_run]),
            _ => devices,
        };
        let jobs = args.jobs.unwrap_or_else(|| match args.device {
            DeviceSpec::Cpu => {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            }
            DeviceSpec::Cuda(_) => (devices.len() / per_run.max(1)).max(1),
        });
        let shard = match args.shard {
            Some(s) => Some(s),
            None => Shard::from_slurm(|k| std::env::var(k).ok())?,
        };
        let mut devices = devices.into_iter();
        let first = devices.next().ok_or("no device to run on")?;
        let mut plan = plan_on::<B>(&args.sweep, &args.results, plugins, first)?
            .with_devices(devices)
            .with_devices_per_run(per_run)?;
        if let Some(shard) = shard {
            let total = plan.runs.len();
            let ids: Vec<&str> = plan.runs.iter().map(|(id, _)| id.as_str()).collect();
            let mine: HashSet<String> = shard.select(&ids).into_iter().map(String::from).collect();
            plan.runs.retain(|(id, _)| mine.contains(id));
            eprintln!(
                "shard {shard}: {} of the sweep's {total} runs",
                plan.runs.len()
            );
        }
        if args.dry_run {
            for (id, _) in &plan.runs {
                println!("{}", plan.dir.join(id).display());
            }
            println!(
                "{} runs; nothing was run or written (--dry-run)",
                plan.runs.len()
            );
            return Ok(());
        }
        crate::interrupt::install();
        let progress = Progress::new(args.quiet);
        let started = Instant::now();
        let statuses = execute(&plan, &args.sweep, plugins, &progress, jobs);
        let summary = Summary::of(&statuses);
        if !args.quiet && plan.dir.is_dir() {
            let found = collect(&plan.dir, None)?;
            println!("\n{}", render(&aggregate(&found.runs), Format::Markdown));
            for note in notes(&found) {
                eprintln!("{note}");
            }
        }
        eprintln!(
            "{} runs in {:.1} s on {}: {}; results in {}",
            plan.runs.len(),
            started.elapsed().as_secs_f64(),
            args.device,
            summary.line(),
            plan.dir.display()
        );
        if summary.is_clean() {
            Ok(())
        } else if summary.interrupted > 0 {
            Err("interrupted; rerun the same command to resume".into())
        } else {
            Err(format!(
                "{} run(s) diverged and {} failed (see above); the others are done",
                summary.diverged, summary.failed
            ))
        }
    }
}
