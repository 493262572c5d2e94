//! Evaluation of a policy during and after training.
//!
//! On the toy: mean reward, MMD² to exact target samples, mode coverage and the total
//! variation of mode weights, and diversity, each averaged over prompts (modes are summed).

use burn::module::Module;
use burn::tensor::{backend::AutodiffBackend, Tensor};
use rand::rngs::StdRng;

use bench_algorithms::{Scalars, TargetSpec};
use bench_envs::sd::SdEnv;
use bench_envs::toy2d::Toy2d;
use bench_envs::{rollout, Denoiser, DiffusionEnv};
use bench_metrics::{
    mean_pairwise_distance, mmd2_unbiased, mode_fractions, ModeReport, DEFAULT_BANDWIDTHS,
};
use bench_models::Point;
use bench_rewards::toy::ExactTarget;
use bench_rewards::Reward;

/// Environments that can evaluate a policy.
pub trait Evaluate<B: AutodiffBackend>: DiffusionEnv<B> {
    /// Metrics of `policy` under `reward`; `target` is the exact distribution to compare with.
    /// The samples drawn are appended to `samples` as CSV rows.
    fn evaluate(
        &self,
        policy: &Self::Policy,
        reward: &dyn Reward<B>,
        target: Option<TargetSpec>,
        samples_per_prompt: usize,
        rng: &mut StdRng,
        samples: &mut SampleLog,
    ) -> Scalars;

    /// Writes the finished policy below `dir` in a format other tools read (SD: the LoRA as
    /// diffusers' `pytorch_lora_weights.safetensors`); nothing by default.
    ///
    /// # Errors
    /// The files cannot be written.
    fn export_policy(&self, _policy: &Self::Policy, _dir: &std::path::Path) -> Result<(), String> {
        Ok(())
    }
}

/// Evaluation samples as CSV (a header, then one row per sample), and images to keep beside it.
#[derive(Clone, Debug, Default)]
pub struct SampleLog {
    pub header: String,
    pub rows: Vec<String>,
    /// PNG files: (name suffix, bytes).
    pub pngs: Vec<(String, Vec<u8>)>,
}

impl SampleLog {
    pub fn to_csv(&self) -> String {
        let mut s = format!("{}\n", self.header);
        for r in &self.rows {
            s.push_str(r);
            s.push('\n');
        }
        s
    }
}

/// `n` final samples `[n, 2]` for prompt `prompt` from `net`.
pub fn toy_final_states<B: AutodiffBackend>(
    env: &Toy2d<B>,
    net: Denoiser<'_, <Toy2d<B> as DiffusionEnv<B>>::Policy>,
    prompt: usize,
    n: usize,
    rng: &mut StdRng,
) -> Tensor<B, 2> {
    rollout(env, net, vec![prompt; n], rng).final_states()
}

/// Toy states `[n, 2]` as host points.
pub fn to_points<B: AutodiffBackend>(states: Tensor<B, 2>) -> Vec<Point> {
    let flat = states
        .into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .expect("float samples");
    flat.chunks(2).map(|c| [c[0], c[1]]).collect()
}

/// `n` final samples for prompt `prompt` from `net`, as host points.
pub fn toy_samples<B: AutodiffBackend>(
    env: &Toy2d<B>,
    net: Denoiser<'_, <Toy2d<B> as DiffusionEnv<B>>::Policy>,
    prompt: usize,
    n: usize,
    rng: &mut StdRng,
) -> Vec<Point> {
    to_points(toy_final_states(env, net, prompt, n, rng))
}

/// The exact target of `spec` for one prompt of the toy.
///
/// # Panics
/// If the reward is not a toy reward.
pub fn toy_target<B: AutodiffBackend>(
    env: &Toy2d<B>,
    reward: &dyn Reward<B>,
    spec: TargetSpec,
    prompt: usize,
) -> ExactTarget {
    let toy = reward.as_toy().expect("toy2d needs a toy reward");
    ExactTarget::new(spec.kind, &env.base_distribution(prompt), toy, spec.beta)
}

/// MMD² and mode report of samples against a target (with as many exact samples).
pub fn compare_with_target(
    samples: &[Point],
    target: &ExactTarget,
    rng: &mut StdRng,
) -> (f64, ModeReport) {
    let exact = target.sample(samples.len(), rng);
    let mmd2 = mmd2_unbiased(samples, &exact, &DEFAULT_BANDWIDTHS);
    let report = ModeReport::new(
        &mode_fractions(samples, target.modes()),
        target.mode_weights(),
    );
    (mmd2, report)
}

impl<B: AutodiffBackend> Evaluate<B> for Toy2d<B> {
    fn evaluate(
        &self,
        policy: &Self::Policy,
        reward: &dyn Reward<B>,
        target: Option<TargetSpec>,
        samples_per_prompt: usize,
        rng: &mut StdRng,
        log: &mut SampleLog,
    ) -> Scalars {
        let frozen = policy.clone().no_grad();
        log.header = "prompt,x,y".into();
        let prompts = self.prompts().len();
        let (mut rewards, mut mmds, mut tvs, mut divs) = (vec![], vec![], vec![], vec![]);
        let (mut covered, mut modes) = (0usize, 0usize);
        for p in 0..prompts {
            let states =
                toy_final_states(self, Denoiser::Policy(&frozen), p, samples_per_prompt, rng);
            let samples = to_points(states.clone());
            let r = reward.score(
                self.decode(states),
                &vec![self.prompts()[p].clone(); samples.len()],
            );
            rewards.extend(bench_algorithms::util::to_f64(r));
            divs.push(mean_pairwise_distance(&samples, 1000));
            log.rows.extend(
                samples
                    .iter()
                    .map(|x| format!("{},{},{}", self.prompts()[p], x[0], x[1])),
            );
            if let (Some(spec), Some(_)) = (target, reward.as_toy()) {
                let exact = toy_target(self, reward, spec, p);
                let (mmd2, report) = compare_with_target(&samples, &exact, rng);
                mmds.push(mmd2);
                tvs.push(report.total_variation);
                covered += report.covered;
                modes += report.target_modes;
            }
        }
        let mean = bench_algorithms::util::mean;
        let mut out = vec![("reward".to_string(), mean(&rewards))];
        if !mmds.is_empty() {
            out.push(("mmd2".into(), mean(&mmds)));
            out.push(("modes_covered".into(), covered as f64));
            out.push(("modes_total".into(), modes as f64));
            out.push(("mode_tv".into(), mean(&tvs)));
        }
        out.push(("diversity".into(), mean(&divs)));
        out
    }
}

/// Rows sampled per batch when evaluating SD (bounds memory on the real model).
const SD_EVAL_BATCH: usize = 8;

impl<B: AutodiffBackend> Evaluate<B> for SdEnv<B> {
    /// Mean and standard deviation of the reward over `samples_per_prompt` images per prompt;
    /// every image is kept in one grid PNG (a row per prompt).
    fn evaluate(
        &self,
        policy: &Self::Policy,
        reward: &dyn Reward<B>,
        _target: Option<TargetSpec>,
        samples_per_prompt: usize,
        rng: &mut StdRng,
        log: &mut SampleLog,
    ) -> Scalars {
        let frozen = policy.clone().no_grad();
        log.header = "prompt,sample,reward".into();
        let mut rewards = vec![];
        let mut pictures = vec![];
        for (p, prompt) in self.prompts().iter().enumerate() {
            let mut done = 0;
            while done < samples_per_prompt {
                let n = SD_EVAL_BATCH.min(samples_per_prompt - done);
                let x0 = rollout(self, Denoiser::Policy(&frozen), vec![p; n], rng).final_states();
                let images = self.decode(x0);
                let r = bench_algorithms::util::to_f64(
                    reward.score(images.clone(), &vec![prompt.clone(); n]),
                );
                for (i, v) in r.iter().enumerate() {
                    log.rows.push(format!("{:?},{},{v}", prompt, done + i));
                }
                rewards.extend(r);
                pictures.extend(crate::images::to_rgb8(images));
                done += n;
            }
        }
        let grid = crate::images::grid(&pictures, samples_per_prompt);
        log.pngs
            .push(("grid".into(), crate::images::png_bytes(&grid)));
        let mean = bench_algorithms::util::mean(&rewards);
        let var = rewards.iter().map(|r| (r - mean).powi(2)).sum::<f64>()
            / (rewards.len().max(2) - 1) as f64;
        vec![
            ("reward".to_string(), mean),
            ("reward_std".to_string(), var.sqrt()),
        ]
    }

    fn export_policy(&self, policy: &Self::Policy, dir: &std::path::Path) -> Result<(), String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        policy.save(&dir.join(bench_models::sd::LORA_FILE))
    }
}
