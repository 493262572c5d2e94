//! Devices: concurrent runs placed on several devices give the results of one device (tested
//! with several CPU devices: the placement code is the same for GPUs), and a device this build
//! or machine lacks is a clear error that writes nothing.

use std::fs;
use std::path::Path;

use bench::backend::Cpu;
use bench::plan::plan_on;
use bench::progress::Progress;
use bench::runner::{execute, Summary};
use bench::Plugins;

use crate::support::{assert_close, bench, logged_numbers};

const SWEEP: &str = r#"
Sweep(
    name: "placed",
    env: Toy2d((prompts: ["ring8"])),
    sampler: (log_prob: Sum, guidance: 1.0),
    epochs: 2,
    eval: (every: 1, samples_per_prompt: 32),
    seeds: [0, 1],
    algorithms: [
        (name: "ddpo", params: (sample_batch: 8, train_batch: 8)),
        (name: "dag_db", params: (sample_batch: 8, train_batch: 8, beta: 1.0)),
    ],
    rewards: [(name: "bump")],
)
"#;

/// Every evaluation's samples and scalars of every run below `dir`, by relative path.
fn evaluations(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for run in fs::read_dir(dir).unwrap() {
        let run = run.unwrap().path();
        let mut files = vec![run.join("eval.csv")];
        for f in fs::read_dir(run.join("samples")).unwrap() {
            files.push(f.unwrap().path());
        }
        for f in files {
            let rel = f.strip_prefix(dir).unwrap().display().to_string();
            out.push((rel, fs::read_to_string(&f).unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn runs_placed_on_several_devices_equal_one_devices() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = tmp.path().join("sweep.ron");
    fs::write(&sweep, SWEEP).unwrap();
    let plugins = Plugins::default();
    let mut results = Vec::new();
    for (devices, jobs) in [(1, 1), (3, 3)] {
        let out = tmp.path().join(format!("on-{devices}"));
        let planned = plan_on::<Cpu>(&sweep, &out, &plugins, Default::default())
            .unwrap()
            .with_devices(vec![Default::default(); devices - 1]);
        // The third worker's runs share the resources of the first device again.
        let first = |worker| planned.group_of(worker)[0];
        assert!(std::ptr::eq(first(0), first(devices)));
        assert_eq!(devices > 1, !std::ptr::eq(first(0), first(1)));
        let statuses = execute(&planned, &sweep, &plugins, &Progress::new(true), jobs);
        assert!(Summary::of(&statuses).is_clean(), "{statuses:?}");
        results.push(evaluations(&planned.dir));
    }
    assert_eq!(results[0].len(), 4 * (1 + 3));
    assert_eq!(results[0], results[1]);
}

#[test]
fn a_run_on_several_devices_trains_as_on_one() {
    // Data parallelism on 2 copies of the CPU device: rollouts and DDPO's, DAG-DB's, DAG-KL's,
    // ∇-GFlowNet's and DRaFT's steps split by rows (the last two with the reward built on each
    // device); equal to one device up to float reduction order.
    let tmp = tempfile::tempdir().unwrap();
    let sweep = tmp.path().join("sweep.ron");
    // A wide clip range: DDPO's 1e-4 counts ratios within float noise of 1 as clipped, which
    // another split of the rows (and another CPU's kernels) reshuffles.
    let one_seed = SWEEP.replace("seeds: [0, 1]", "seeds: [0]").replace(
        "(sample_batch: 8, train_batch: 8))",
        "(sample_batch: 8, train_batch: 8, clip_range: 0.2))",
    );
    let one_seed = one_seed.replace(
        "    ],\n    rewards",
        "        (name: \"dag_kl\", params: (sample_batch: 8, train_batch: 8, beta: 1.0)),\n        \
         (name: \"nabla_gfn\", params: (sample_batch: 4, train_batch: 4, beta: 1.0)),\n        \
         (name: \"draft\", params: (k: 1, batch: 4, updates: 1)),\n    ],\n    \
         rewards",
    );
    assert!(one_seed.contains("clip_range") && one_seed.contains("draft"));
    fs::write(&sweep, one_seed).unwrap();
    let run = |results: &Path, k: &str| {
        bench([
            "run",
            sweep.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
            "--devices-per-run",
            k,
            "--quiet",
        ])
    };
    let mut logged = Vec::new();
    for k in ["1", "2"] {
        let results = tmp.path().join(format!("per-run-{k}"));
        let out = run(&results, k);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        // Every built-in objective splits its steps: none says it trains on one device.
        assert!(!err.contains("spreads"), "{err}");
        logged.push(logged_numbers(&results.join("placed")));
    }
    assert_eq!(logged[0].len(), 10);
    assert_close(&logged[0], &logged[1], 1e-4);
    // Fewer than one device per run, more than the devices named (`cpu` makes copies, up to
    // 64) and absurd counts are refused by name before anything is written.
    let results = tmp.path().join("refused");
    for (k, says) in [
        ("0", "--devices-per-run"),
        ("65", "--devices-per-run"),
        ("99999999999", "--devices-per-run"),
    ] {
        let out = run(&results, k);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{k}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    assert!(!results.exists());
}

#[test]
fn a_device_this_build_or_machine_lacks_is_an_error_that_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = tmp.path().join("sweep.ron");
    fs::write(&sweep, SWEEP).unwrap();
    let results = tmp.path().join("results");
    for (device, says) in [
        (
            "cuda",
            if cfg!(feature = "cuda") {
                "CUDA"
            } else {
                "--features cuda"
            },
        ),
        ("gpu:0", "`gpu:0` is not a device"),
    ] {
        let out = bench([
            "run",
            sweep.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
            "--device",
            device,
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{device}");
        assert!(err.contains(says), "{device}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!results.exists(), "{device}: something was written");
    }
    let out = bench(["sample", "--prompt", "a cat", "--device", "cuda:0,1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("uses one"), "{err}");
}

#[test]
fn doctor_runs_a_product_on_each_device_asked_for() {
    let out = bench(["doctor", "--device", "cpu"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ok") && text.contains("Cpu"), "{text}");
    if !cfg!(feature = "cuda") {
        let out = bench(["doctor", "--device", "cuda:1"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success());
        assert!(
            text.contains("FAILED") && text.contains("--features cuda"),
            "{text}"
        );
    }
}
