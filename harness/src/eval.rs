//! Evaluation of a policy during and after training.
//!
//! On the toy: mean reward, MMD² to exact target samples, mode coverage and the total
//! variation of mode weights, and diversity, each averaged over prompts (modes are summed).

use burn::module::Module;
use burn::tensor::{backend::AutodiffBackend, Tensor};
use rand::rngs::StdRng;

use bench_algorithms::{Scalars, TargetSpec};
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
}

/// Evaluation samples as CSV: a header, then one row per sample.
#[derive(Clone, Debug, Default)]
pub struct SampleLog {
    pub header: String,
    pub rows: Vec<String>,
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
