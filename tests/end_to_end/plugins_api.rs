//! The plugin interfaces as a researcher uses them from code: resolved parameters give run ids
//! that follow the code's defaults, a model is loaded once per process whatever the samplers
//! of its runs, and a metric sees base-model samples from the same noise and keeps its state in
//! the run directory.

use std::fs;
use std::path::Path;

use burn::tensor::backend::{AutodiffBackend, Backend};
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use bench::plan::plan;
use bench::progress::Progress;
use bench::runner::execute;
use bench::Plugins;
use bench_algorithms::ddpo::{Ddpo, DdpoOwn};
use bench_algorithms::policy_gradient::PpoShared;
use bench_algorithms::{Algorithm, Objective};
use bench_core::{Family, FamilyMember, NoParams, SampleKind};
use bench_envs::DiffusionEnv;
use bench_metrics::{
    EvalContext, EvalPoint, Metric, MetricPlugin, MetricSetup, Needs, SampleBatch, Scalars,
};

use crate::support::fixture;

const TOY: &str = r#"Sweep(
    name: "api",
    env: Toy2d((prompts: ["ring8"])),
    sampler: (log_prob: Sum, guidance: 1.0, schedule: (inference_steps: 10)),
    epochs: 2,
    eval: (every: 1, samples_per_prompt: 16),
    algorithms: [(name: "ddpo", params: (train_batch: 8, clip_range: 0.2))],
    rewards: [(name: "bump")],
)"#;

fn write(dir: &Path, text: &str) -> std::path::PathBuf {
    let file = dir.join("sweep.ron");
    fs::write(&file, text).unwrap();
    file
}

/// DDPO under a `sample_batch` default of `$n`: the same objective as a later version of the
/// code with another default would build it.
macro_rules! ddpo_with_default {
    ($own:ident, $objective:ident, $n:expr) => {
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        struct $own {
            inner_epochs: usize,
        }

        impl bench_core::Validate for $own {}

        impl FamilyMember<PpoShared> for $own {
            fn shared_defaults() -> PpoShared {
                PpoShared {
                    sample_batch: $n,
                    ..PpoShared::default()
                }
            }
        }

        struct $objective;

        impl Objective for $objective {
            type Params = Family<$own, PpoShared>;

            fn build<B: AutodiffBackend, E: DiffusionEnv<B> + 'static>(
                params: &Self::Params,
                env: &E,
                rng: &mut StdRng,
            ) -> Result<Box<dyn Algorithm<B, E>>, String> {
                let own = DdpoOwn {
                    inner_epochs: params.own.inner_epochs.max(1),
                };
                let shared = params.shared.clone();
                Ddpo::build(&Family { own, shared }, env, rng)
            }
        }
    };
}

ddpo_with_default!(Own16, Ddpo16, 16);
ddpo_with_default!(Own32, Ddpo32, 32);

fn run_ids<O: Objective>(sweep: &Path, results: &Path) -> Vec<String> {
    let mut plugins = Plugins::default();
    plugins.objective::<O>("ddpo", "DDPO with another sample_batch default");
    let planned = plan(sweep, results, &plugins).unwrap();
    planned.runs.into_iter().map(|(id, _)| id).collect()
}

#[test]
fn changing_a_default_changes_the_run_id_of_a_sweep_that_did_not_set_it() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let unset = write(tmp.path(), TOY);
    let (a, b) = (
        run_ids::<Ddpo16>(&unset, &results),
        run_ids::<Ddpo32>(&unset, &results),
    );
    assert_ne!(
        a, b,
        "a finished run under the old default would pass as done"
    );
    // Writing the default out is the same run as leaving it to the default.
    let set = write(
        tmp.path(),
        &TOY.replace("(train_batch: 8,", "(sample_batch: 16, train_batch: 8,"),
    );
    assert_eq!(run_ids::<Ddpo16>(&set, &results), a);
    assert_ne!(run_ids::<Ddpo32>(&set, &results), b);
}

#[test]
fn a_sweep_loads_each_model_once_whatever_its_samplers() {
    let tmp = tempfile::tempdir().unwrap();
    let text = format!(
        r#"Sweep(
    name: "sd_once",
    env: Sd((model: "{}", prompts: ["a photo of a cat"], resolution: 16,
        flow_net: (block_out_channels: [32, 32], heads: 4),
        field_net: (block_out_channels: [32, 32], heads: 4))),
    sampler: (schedule: (inference_steps: 4)),
    epochs: 1,
    algorithms: [(name: "ddpo", params: (sample_batch: 2, train_batch: 2))],
    rewards: [(name: "brightness")],
    overrides: [
        (label: "ddim"),
        (label: "ddpm", sampler: (kind: Ddpm, schedule: (inference_steps: 4))),
        (label: "sde", sampler: (kind: SdeDpmSolver, schedule: (inference_steps: 3))),
    ],
)"#,
        fixture("sd_tiny").display()
    );
    let planned = plan(
        &write(tmp.path(), &text),
        &tmp.path().join("results"),
        &Plugins::default(),
    )
    .unwrap();
    assert_eq!(planned.runs.len(), 3);
    assert_eq!(
        planned.resources.networks.len(),
        1,
        "one pipeline for three samplers"
    );
}

/// Reports the largest |policy sample − base sample| (0 at epoch 0: the untrained policy is the
/// base, and both start from the same noise) and how many evaluations the run has had, counted
/// in its state directory across processes.
struct BaseProbe {
    max_diff: f32,
}

impl MetricPlugin for BaseProbe {
    type Params = NoParams;
    const READS: &'static [SampleKind] = &[SampleKind::Points2d];

    fn build<B: Backend>(
        _params: &NoParams,
        _setup: &MetricSetup<'_, B>,
    ) -> Result<Box<dyn Metric<B>>, String> {
        Ok(Box::new(Self { max_diff: 0.0 }))
    }
}

impl<B: Backend> Metric<B> for BaseProbe {
    fn needs(&mut self, _at: &EvalPoint<'_>) -> Result<Option<Needs>, String> {
        Ok(Some(Needs {
            samples_per_prompt: None,
            base: true,
        }))
    }

    fn update(
        &mut self,
        batch: &SampleBatch<'_, B>,
        _cx: &mut EvalContext<'_>,
    ) -> Result<(), String> {
        let base = batch.base.ok_or("no base samples")?;
        let diff = (batch.samples.clone() - base.clone())
            .abs()
            .max()
            .into_scalar();
        self.max_diff = self
            .max_diff
            .max(burn::tensor::ElementConversion::elem(diff));
        Ok(())
    }

    fn finish(&mut self, cx: &mut EvalContext<'_>) -> Result<Scalars, String> {
        let file = cx.state_dir.join("evaluations");
        let seen: usize = fs::read_to_string(&file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
            + 1;
        fs::create_dir_all(cx.state_dir).map_err(|e| e.to_string())?;
        fs::write(&file, seen.to_string()).map_err(|e| e.to_string())?;
        let out = vec![
            ("base_diff".to_string(), f64::from(self.max_diff)),
            ("evaluations".to_string(), seen as f64),
        ];
        self.max_diff = 0.0;
        Ok(out)
    }
}

#[test]
fn a_metric_gets_base_samples_from_the_same_noise_and_keeps_state_in_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let text = TOY.replace(
        "samples_per_prompt: 16)",
        r#"samples_per_prompt: 16, metrics: [(name: "reward"), (name: "base_probe")])"#,
    );
    let sweep = write(tmp.path(), &text);
    let mut plugins = Plugins::default();
    plugins.metric::<BaseProbe>("base_probe", "test metric");
    let planned = plan(&sweep, &tmp.path().join("results"), &plugins).unwrap();
    let statuses = execute(&planned, &sweep, &plugins, &Progress::new(true), 1);
    assert!(
        bench::runner::Summary::of(&statuses).is_clean(),
        "{statuses:?}"
    );
    let run = planned.dir.join(&planned.runs[0].0);
    let eval = fs::read_to_string(run.join("eval.csv")).unwrap();
    let value = |row: &str| -> f64 {
        let line = eval
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("{eval}"));
        line.rsplit(',').next().unwrap().parse().unwrap()
    };
    assert_eq!(value("0,base_diff,"), 0.0, "{eval}");
    assert!(value("2,base_diff,") > 0.0, "{eval}");
    assert_eq!(value("2,evaluations,"), 3.0, "{eval}");
    assert_eq!(
        fs::read_to_string(run.join("metrics/base_probe/evaluations")).unwrap(),
        "3"
    );
}
