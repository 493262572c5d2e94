//! Evaluation of a policy during and after training, on the inference backend.
//!
//! Each prompt's samples are drawn in batches the environment chooses, scored by the run's
//! reward, appended to `samples/epoch-NNNNNN.csv` as they come, and streamed through the run's
//! metrics; nothing proportional to the number of samples is kept by the evaluation itself.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use rand::rngs::StdRng;

use bench_algorithms::util::to_f64;
use bench_core::SampleKind;
use bench_envs::{rollout_spread, Denoiser, DiffusionEnv, DiffusionModel};
use bench_metrics::points::to_points;
use bench_metrics::{EvalContext, EvalPoint, Metric, SampleBatch, Scalars};
use bench_rewards::Reward;

/// Why an evaluation did not give scalars.
#[derive(Debug)]
pub enum EvalError {
    /// The samples or their rewards are not finite: the run has diverged.
    NonFinite {
        what: String,
        value: f64,
    },
    Failed(String),
}

impl From<String> for EvalError {
    fn from(e: String) -> Self {
        Self::Failed(e)
    }
}

/// Whether every value of `t` is finite.
fn all_finite<B: Backend>(t: &Tensor<B, 4>) -> bool {
    let bad = t.clone().is_nan().bool_or(t.clone().is_inf()).any();
    !bad.into_data().iter::<bool>().any(|b| b)
}

/// The samples of one evaluation as CSV (`prompt,sample,reward`, and the toy's `x,y`),
/// written to a temporary file as they come and renamed into place when complete (removed if
/// the evaluation fails).
struct SampleCsv {
    path: PathBuf,
    tmp: PathBuf,
    out: csv::Writer<BufWriter<File>>,
    points: bool,
}

impl SampleCsv {
    fn create(path: PathBuf, kind: SampleKind) -> Result<Self, String> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("samples");
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let file = File::create(&tmp).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
        let points = kind == SampleKind::Points2d;
        let mut out = csv::Writer::from_writer(BufWriter::new(file));
        let mut header = vec!["prompt", "sample", "reward"];
        if points {
            header.extend(["x", "y"]);
        }
        out.write_record(&header).map_err(|e| e.to_string())?;
        Ok(Self {
            path,
            tmp,
            out,
            points,
        })
    }

    fn write<B: Backend>(&mut self, batch: &SampleBatch<'_, B>) -> Result<(), String> {
        let points = if self.points {
            to_points(batch.samples)
        } else {
            vec![]
        };
        for (i, r) in batch.rewards.iter().enumerate() {
            let mut row = vec![
                batch.prompt_text.to_string(),
                (batch.first + i).to_string(),
                r.to_string(),
            ];
            if let Some(p) = points.get(i) {
                row.extend([p[0].to_string(), p[1].to_string()]);
            }
            self.out
                .write_record(&row)
                .map_err(|e| format!("writing {}: {e}", self.tmp.display()))?;
        }
        Ok(())
    }

    fn finish(self) -> Result<(), String> {
        let (tmp, path) = (self.tmp.clone(), self.path.clone());
        let result = (|| {
            let file = self
                .out
                .into_inner()
                .map_err(|e| e.error().to_string())?
                .into_inner()
                .map_err(|e| e.error().to_string())?;
            file.sync_all().map_err(|e| e.to_string())?;
            std::fs::rename(&tmp, &path).map_err(|e| e.to_string())
        })();
        result.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("writing {}: {e}", path.display())
        })
    }
}

/// An evaluation that fails part-way leaves no half-written CSV behind.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A metric with its name (its label in the sweep).
pub type NamedMetric<B> = (String, Box<dyn Metric<B>>);

/// A run's metrics with their names, and where each keeps its state.
pub struct Metrics<B: Backend> {
    pub metrics: Vec<NamedMetric<B>>,
    state_dirs: Vec<PathBuf>,
}

impl<B: Backend> Metrics<B> {
    /// `metrics` of the run whose directory is `run_dir` (state in `run_dir/metrics/<name>`).
    pub fn new(metrics: Vec<NamedMetric<B>>, run_dir: &Path) -> Self {
        let state_dirs = metrics
            .iter()
            .map(|(name, _)| run_dir.join("metrics").join(name))
            .collect();
        Self {
            metrics,
            state_dirs,
        }
    }
}

/// A metric's samples per prompt and whether it reads the base model's, at one evaluation;
/// `None` for a metric that sits it out.
type Ask = Option<(usize, bool)>;

impl<B: Backend> Metrics<B> {
    /// The metrics taking part in an evaluation, by `asks` (one per metric, in order): name,
    /// metric, state directory and what it asked for.
    fn taking_part<'a>(
        &'a mut self,
        asks: &'a [Ask],
    ) -> impl Iterator<Item = (&'a str, &'a mut Box<dyn Metric<B>>, &'a Path, (usize, bool))> {
        self.metrics
            .iter_mut()
            .zip(&self.state_dirs)
            .zip(asks)
            .filter_map(|(((name, m), dir), ask)| ask.map(|a| (name.as_str(), m, dir.as_path(), a)))
    }
}

/// Where an evaluation runs and what it writes.
pub struct Evaluation<'a, B: AutodiffBackend, E: DiffusionEnv<B>> {
    pub env: &'a E,
    /// The run's environment on each further device of a data-parallel run: each evaluation
    /// batch is sampled spread over them (decoded, scored and measured on the first device).
    pub replicas: &'a [&'a E],
    pub reward: &'a dyn Reward<B>,
    pub samples_per_prompt: usize,
    /// `<run>/samples/`.
    pub samples_dir: PathBuf,
}

impl<B: AutodiffBackend, E: DiffusionEnv<B>> Evaluation<'_, B, E> {
    /// Evaluates `policy` after `epoch` of `epochs` epochs: samples, their CSV, and the
    /// scalars of the metrics that take part in this evaluation.
    ///
    /// Each prompt gets the most samples any taking-part metric asks for (at least
    /// `samples_per_prompt`, which the CSV always holds); a metric sees only its first ones.
    /// Batches end at every metric's count, so that a metric's samples are whole batches and
    /// the base model is sampled only as far as a metric wants it.
    ///
    /// # Errors
    /// Non-finite samples or rewards (a diverged policy), a metric's failure, two metrics
    /// reporting the same scalar, or an I/O failure.
    pub fn run(
        &self,
        policy: &E::Policy,
        metrics: &mut Metrics<B::InnerBackend>,
        epoch: usize,
        epochs: usize,
        rng: &mut StdRng,
    ) -> Result<Scalars, EvalError> {
        let (env, infer) = (self.env, self.env.infer());
        let models: Vec<&E::Infer> = std::iter::once(env)
            .chain(self.replicas.iter().copied())
            .map(DiffusionEnv::infer)
            .collect();
        let policy = policy.valid();
        // What each metric asks of this evaluation: its samples per prompt and whether it
        // reads the base model's; `None` for a metric that sits this one out.
        let mut asks: Vec<Ask> = Vec::with_capacity(metrics.metrics.len());
        for ((name, m), dir) in metrics.metrics.iter_mut().zip(&metrics.state_dirs) {
            let at = EvalPoint {
                epoch,
                epochs,
                state_dir: dir,
            };
            let needs = m.needs(&at).map_err(|e| format!("metric `{name}`: {e}"))?;
            asks.push(needs.map(|n| {
                let count = n.samples_per_prompt.unwrap_or(self.samples_per_prompt);
                (count, n.base)
            }));
        }
        let per_prompt = asks
            .iter()
            .flatten()
            .map(|&(count, _)| count)
            .fold(self.samples_per_prompt, usize::max);
        let base_upto = asks
            .iter()
            .flatten()
            .filter(|&&(_, base)| base)
            .map(|&(count, _)| count)
            .max()
            .unwrap_or(0);
        let mut csv = SampleCsv::create(
            self.samples_dir.join(format!("epoch-{epoch:06}.csv")),
            env.sample_kind(),
        )?;
        let _cleanup = Cleanup(csv.tmp.clone());
        let batch_size = env.eval_batch().max(1);
        for (p, prompt) in env.prompts().iter().enumerate() {
            let mut done = 0;
            while done < per_prompt {
                // Up to the next metric's count, so that no batch straddles one.
                let boundary = asks
                    .iter()
                    .flatten()
                    .map(|&(count, _)| count)
                    .filter(|&count| count > done)
                    .fold(per_prompt, usize::min);
                let n = batch_size.min(boundary - done);
                // The base model from the same noise, on a copy of the RNG: the policy's
                // samples do not depend on whether a metric asked for the base's.
                let base_rng = (done < base_upto).then(|| rng.clone());
                let x0 = rollout_spread(&models, Denoiser::Policy(&policy), vec![p; n], rng)
                    .final_states();
                let samples = infer.decode(x0);
                let prompts = vec![prompt.clone(); n];
                let rewards = to_f64(self.reward.score(samples.clone(), &prompts));
                if !all_finite(&samples) {
                    return Err(EvalError::NonFinite {
                        what: "evaluation samples".into(),
                        value: f64::NAN,
                    });
                }
                if let Some(r) = rewards.iter().find(|r| !r.is_finite()) {
                    return Err(EvalError::NonFinite {
                        what: "evaluation reward".into(),
                        value: *r,
                    });
                }
                let base: Option<Tensor<B::InnerBackend, 4>> = base_rng.map(|mut r| {
                    let base = rollout_spread(&models, Denoiser::Base, vec![p; n], &mut r);
                    infer.decode(base.final_states())
                });
                let mut batch = SampleBatch {
                    prompt: p,
                    prompt_text: prompt,
                    first: done,
                    samples: &samples,
                    rewards: &rewards,
                    base: None,
                };
                csv.write(&batch)?;
                for (_, m, dir, (count, wants_base)) in metrics.taking_part(&asks) {
                    if done < count {
                        batch.base = if wants_base { base.as_ref() } else { None };
                        m.update(&batch, &mut self.context(epoch, rng, dir))?;
                    }
                }
                done += n;
            }
            for (_, m, dir, _) in metrics.taking_part(&asks) {
                m.end_prompt(p, &mut self.context(epoch, rng, dir))?;
            }
        }
        csv.finish()?;
        let mut scalars: Scalars = Vec::new();
        for (name, m, dir, _) in metrics.taking_part(&asks) {
            for (k, v) in m.finish(&mut self.context(epoch, rng, dir))? {
                if scalars.iter().any(|(j, _)| *j == k) {
                    return Err(EvalError::Failed(format!(
                        "metric `{name}` reports `{k}`, which another metric of this run \
                         reports too"
                    )));
                }
                scalars.push((k, v));
            }
        }
        Ok(scalars)
    }

    fn context<'a>(&'a self, epoch: usize, rng: &'a mut StdRng, dir: &'a Path) -> EvalContext<'a> {
        EvalContext {
            epoch,
            rng,
            state_dir: dir,
            samples_dir: &self.samples_dir,
        }
    }
}
