//! End to end on the tiny SD fixture pipeline (diffusers layout, random weights): one epoch
//! each of DDPO and DAG-DB through `bench run` with the mean-brightness reward. Both finish,
//! evaluate, write an image grid, and export a LoRA in diffusers' format whose `up` matrices
//! (zero at initialisation) have moved.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use safetensors::SafeTensors;

use crate::support::{assert_close, bench_ok, fixture, inception_weights, logged_numbers};

/// The papers' SD sampler (DDIM, η = 1, CFG 5), with 4 steps.
const DDIM: &str = "(schedule: (inference_steps: 4))";

fn sweep(model: &Path) -> String {
    sweep_with(
        model,
        DDIM,
        r#"
        (name: "ddpo", params: (sample_batch: 4, train_batch: 2, optim: (lr: 1e-2))),
        (name: "dag_db", params: (sample_batch: 4, train_batch: 2, beta: 1.0, optim: (lr: 1e-2))),
"#,
    )
}

fn sweep_with(model: &Path, sampler: &str, algorithms: &str) -> String {
    sweep_evaluated(
        model,
        sampler,
        algorithms,
        "(every: 1, samples_per_prompt: 2)",
    )
}

fn sweep_evaluated(model: &Path, sampler: &str, algorithms: &str, eval: &str) -> String {
    format!(
        r#"
Sweep(
    name: "sd_tiny",
    env: Sd((
        model: "{}",
        prompts: ["a photo of a cat", "an astronaut riding a horse"],
        resolution: 16,
        flow_net: (block_out_channels: [32, 32], heads: 4),
        field_net: (block_out_channels: [32, 32], heads: 4),
    )),
    sampler: {sampler},
    epochs: 1,
    eval: {eval},
    algorithms: [{algorithms}],
    rewards: [(name: "brightness")],
)
"#,
        model.display()
    )
}

/// The largest |value| of the LoRA `up` matrices in a diffusers LoRA file, and its key count.
fn lora_up_max(file: &Path) -> (f32, usize) {
    let bytes = fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut max = 0.0f32;
    for (name, view) in st.tensors() {
        assert!(
            name.starts_with("unet.") && name.contains(".lora."),
            "{name}"
        );
        if name.ends_with("lora.up.weight") {
            for c in view.data().chunks_exact(4) {
                max = max.max(f32::from_le_bytes(c.try_into().unwrap()).abs());
            }
        }
    }
    (max, st.len())
}

/// Runs `text` through `bench run` with `more` arguments, its results in `tmp/<dir>`; returns
/// the sweep's results directory.
fn run_sweep_with(text: &str, tmp: &Path, dir: &str, more: &[&str]) -> PathBuf {
    let file = tmp.join("sweep.ron");
    fs::write(&file, text).unwrap();
    let results = tmp.join(dir);
    let mut args = vec![
        "run".as_ref(),
        file.as_os_str(),
        "--quiet".as_ref(),
        "--results".as_ref(),
        results.as_os_str(),
    ];
    args.extend(more.iter().map(OsStr::new));
    bench_ok(args);
    results.join("sd_tiny")
}

/// Runs `text` through `bench run`; returns the run directories.
fn run_sweep(text: &str, tmp: &Path) -> Vec<PathBuf> {
    fs::read_dir(run_sweep_with(text, tmp, "results", &[]))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect()
}

#[test]
fn ddpo_and_dag_db_train_a_lora_on_tiny_sd() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = run_sweep(&sweep(&fixture("sd_tiny")), tmp.path());
    assert_eq!(runs.len(), 2);
    for run in &runs {
        let name = run.file_name().unwrap().to_string_lossy().to_string();
        assert!(run.join("DONE").is_file(), "{name} did not finish");
        // Epoch 0 (the base model) and epoch 1 evaluated: reward rows for both.
        let eval = fs::read_to_string(run.join("eval.csv")).unwrap();
        for epoch in ["0,reward,", "1,reward,"] {
            assert!(eval.lines().any(|l| l.starts_with(epoch)), "{name}: {eval}");
        }
        let grid = image::open(run.join("samples/epoch-000001-grid.png")).unwrap();
        // 2 prompts × 2 samples of 16×16 pixels.
        assert_eq!((grid.width(), grid.height()), (32, 32), "{name}");
        let (up, keys) = lora_up_max(&run.join("policy/pytorch_lora_weights.safetensors"));
        // The same keys as the LoRA peft made on this UNet (fixtures/sd_tiny/lora).
        let (_, peft_keys) = lora_up_max(&fixture("sd_tiny/lora/pytorch_lora_weights.safetensors"));
        assert_eq!(keys, peft_keys, "{name}");
        assert!(
            up > 0.0,
            "{name}: the LoRA did not move from its zero initialisation"
        );
    }
}

/// One run on two devices (copies of the CPU device, each loading its own pipeline) trains as
/// on one: rollouts and DDPO's, DAG-DB's, ∇-GFlowNet's and DRaFT's steps split by rows (the
/// last two differentiating the reward built on each device), equal up to float reduction
/// order (DDPO with a clip range wide of float noise).
#[test]
fn a_data_parallel_run_on_tiny_sd_equals_one_device() {
    let tmp = tempfile::tempdir().unwrap();
    let text = sweep_with(
        &fixture("sd_tiny"),
        DDIM,
        r#"
        (name: "ddpo", params: (sample_batch: 4, train_batch: 2, clip_range: 0.2, optim: (lr: 1e-2))),
        (name: "dag_db", params: (sample_batch: 4, train_batch: 2, beta: 1.0, optim: (lr: 1e-2))),
        (name: "nabla_gfn", params: (sample_batch: 4, train_batch: 4, beta: 1.0, optim: (lr: 1e-2))),
        (name: "draft", params: (k: 2, batch: 4, updates: 1, optim: (lr: 1e-2))),
"#,
    );
    let logged: Vec<_> = ["1", "2"]
        .iter()
        .map(|k| {
            logged_numbers(&run_sweep_with(
                &text,
                tmp.path(),
                k,
                &["--devices-per-run", k],
            ))
        })
        .collect();
    assert_eq!(logged[0].len(), 8);
    assert_close(&logged[0], &logged[1], 1e-4);
}

/// Every other objective also runs on SD through the same environment trait: one epoch each,
/// finite training scalars, and a LoRA that moved.
#[test]
fn every_objective_runs_an_epoch_on_tiny_sd() {
    let tmp = tempfile::tempdir().unwrap();
    let algorithms = r#"
        (name: "dpok", params: (sample_batch: 4, train_batch: 2, optim: (lr: 1e-2))),
        (name: "dag_kl", params: (sample_batch: 4, train_batch: 2, beta: 1.0, optim: (lr: 1e-2))),
        (name: "residual_db", params: (sample_batch: 4, train_batch: 2, beta: 1.0, optim: (lr: 1e-2))),
        (name: "nabla_gfn", params: (sample_batch: 4, train_batch: 2, beta: 1.0, optim: (lr: 1e-2))),
        (name: "refl", params: (batch: 2, updates: 1, stop_steps: (1, 3), optim: (lr: 1e-2))),
        (name: "draft", params: (k: 1, batch: 2, updates: 1, optim: (lr: 1e-2))),
        (name: "draft_lv", params: (batch: 2, updates: 1, optim: (lr: 1e-2))),
"#;
    let runs = run_sweep(
        &sweep_with(&fixture("sd_tiny"), DDIM, algorithms),
        tmp.path(),
    );
    assert_eq!(runs.len(), 7);
    assert_trained(&runs);
}

/// ∇-GFlowNet's second MDP, first-order SDE-DPM-Solver++ (every step a Gaussian, the last one
/// included), trains through the same trait: ∇-GFlowNet itself and DDPO on it.
#[test]
fn objectives_train_on_the_sde_dpm_solver_mdp() {
    let tmp = tempfile::tempdir().unwrap();
    let algorithms = r#"
        (name: "nabla_gfn", params: (sample_batch: 4, train_batch: 2, beta: 1.0, optim: (lr: 1e-2))),
        (name: "ddpo", params: (sample_batch: 4, train_batch: 2, optim: (lr: 1e-2))),
"#;
    let sampler = "(kind: SdeDpmSolver, schedule: (inference_steps: 4))";
    let runs = run_sweep(
        &sweep_with(&fixture("sd_tiny"), sampler, algorithms),
        tmp.path(),
    );
    assert_eq!(runs.len(), 2);
    assert_trained(&runs);
}

/// Each run wrote finite training scalars and exported a LoRA that moved from zero.
fn assert_trained(runs: &[PathBuf]) {
    for run in runs {
        let name = run.file_name().unwrap().to_string_lossy().to_string();
        let metrics = fs::read_to_string(run.join("metrics.csv")).unwrap();
        let row = metrics
            .lines()
            .nth(1)
            .unwrap_or_else(|| panic!("{name}: {metrics}"));
        for value in row.split(',') {
            let v: f64 = value.parse().unwrap();
            assert!(v.is_finite(), "{name}: {metrics}");
        }
        let (up, _) = lora_up_max(&run.join("policy/pytorch_lora_weights.safetensors"));
        assert!(up > 0.0, "{name}: the LoRA did not move");
    }
}

/// The papers' image metrics on tiny SD (deterministic Inception weights, the tiny DreamSim
/// fixture): per-prompt FID of the base model against itself from the same noise is 0 and grows
/// once DDPO has trained; the base model's features are kept in the run; each metric runs at
/// the evaluations its `when` names, on as many samples as it asks for.
#[test]
fn inception_metrics_evaluate_tiny_sd() {
    let tmp = tempfile::tempdir().unwrap();
    let weights = inception_weights(tmp.path());
    let dreamsim = fixture("dreamsim/models").display().to_string();
    let eval_with = |w: &str| {
        format!(
            r#"(every: 1, samples_per_prompt: 2, metrics: [
            (name: "reward"),
            (name: "per_prompt_fid", params: (images_per_prompt: 3, weights: "{w}", when: Every)),
            (name: "fid_diversity", params: (images: 4, weights: "{w}")),
            (name: "image_diversity", params: (images_per_prompt: 3, weights: "{w}", when: Final)),
            (name: "dreamsim", params: (model: "{dreamsim}", images_per_prompt: 3, when: Every)),
        ])"#
        )
    };
    let eval = eval_with(&weights.display().to_string());
    let algorithm =
        r#"(name: "ddpo", params: (sample_batch: 8, train_batch: 4, optim: (lr: 3e-2))),"#;
    let runs = run_sweep(
        &sweep_evaluated(&fixture("sd_tiny"), DDIM, algorithm, &eval),
        tmp.path(),
    );
    let run = &runs[0];
    let eval = fs::read_to_string(run.join("eval.csv")).unwrap();
    let value = |epoch: usize, metric: &str| -> Option<f64> {
        eval.lines()
            .find_map(|l| l.strip_prefix(&format!("{epoch},{metric},")))
            .map(|v| v.parse().unwrap())
    };
    let base = value(0, "per_prompt_fid").expect("per_prompt_fid at epoch 0");
    assert!(base.abs() < 1e-9, "base against itself: {base}");
    let trained = value(1, "per_prompt_fid").expect("per_prompt_fid at epoch 1");
    assert!(trained > 1e-3, "after training: {trained}");
    for epoch in [0, 1] {
        let fid = value(epoch, "fid_diversity").expect("fid_diversity (BaseAndFinal)");
        assert!(fid > 0.0, "{eval}");
    }
    assert_eq!(value(0, "image_diversity"), None, "Final only: {eval}");
    for epoch in [0, 1] {
        let d = value(epoch, "dreamsim_diversity").expect("dreamsim at every evaluation");
        assert!(d > 0.0 && d < 2.0, "{eval}");
    }
    assert!(value(1, "image_diversity").unwrap() > 0.0, "{eval}");
    assert!(run
        .join("metrics/per_prompt_fid/base-features.safetensors")
        .is_file());
    // Each prompt got the most any metric asked for: fid_diversity's 2·⌈4/2⌉ = 4.
    let samples = fs::read_to_string(run.join("samples/epoch-000001.csv")).unwrap();
    assert_eq!(samples.lines().count(), 1 + 2 * 4, "{samples}");

    // A count beyond the machine's memory is refused before the sweep starts.
    let huge =
        eval_with(&weights.display().to_string()).replace("(images: 4,", "(images: 100000000000,");
    let file = tmp.path().join("huge.ron");
    fs::write(
        &file,
        sweep_evaluated(&fixture("sd_tiny"), DDIM, algorithm, &huge),
    )
    .unwrap();
    let out = crate::support::bench(["run".as_ref(), file.as_os_str(), "--dry-run".as_ref()]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        !out.status.success() && err.contains("huge.ron:") && err.contains("of memory"),
        "{err}"
    );

    // Missing weights stop the sweep before it starts, named with where to get them.
    let text = sweep_evaluated(
        &fixture("sd_tiny"),
        DDIM,
        algorithm,
        &eval_with("nothing.pth"),
    );
    let file = tmp.path().join("missing.ron");
    fs::write(&file, text).unwrap();
    let out = crate::support::bench(["run".as_ref(), file.as_os_str(), "--quiet".as_ref()]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success());
    assert!(
        err.contains("missing.ron:")
            && err.contains("nothing.pth")
            && err.contains("pytorch-fid/releases"),
        "{err}"
    );
}
