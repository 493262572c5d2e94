//! The command line: help, tables in three formats, and clear errors for bad input that
//! write nothing.

use std::fs;
use std::path::Path;
use std::process::Output;

use crate::support::bench;

const TINY: &str = r#"
Sweep(
    name: "tiny",
    env: Toy2d((prompts: ["ring8"])),
    sampler: (log_prob: Sum, guidance: 1.0),
    epochs: 2,
    checkpoint_every: 1,
    eval: (every: 2, samples_per_prompt: 50, target: (kind: Power, beta: 1.0)),
    seeds: [0, 1],
    algorithms: [
        (name: "ddpo", params: (sample_batch: 8, train_batch: 8)),
        (name: "dag_db", params: (sample_batch: 8, train_batch: 8, beta: 1.0)),
    ],
    rewards: [(name: "bump")],
)
"#;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Runs `bench run` on `text` and returns its output and whether anything was written.
fn run_text(text: &str) -> (Output, bool) {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("sweep.ron");
    fs::write(&file, text).unwrap();
    let results = tmp.path().join("results");
    let out = bench([
        "run",
        file.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ]);
    (out, results.exists())
}

#[test]
fn help_explains_every_subcommand() {
    let out = bench(["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for sub in ["run", "table", "list"] {
        assert!(text.contains(sub), "{text}");
    }
    let out = bench(["run", "--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("--results"));
}

#[test]
fn malformed_ron_names_file_line_and_column() {
    let broken = TINY.replace("epochs: 2,", "epochs: 2\n    checkpoint_every 1,");
    let (out, wrote) = run_text(&broken);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("sweep.ron:7:5:"), "{err}");
    assert!(err.to_lowercase().contains("expected"), "{err}");
    assert!(!err.contains("panicked"));
    assert!(
        !wrote,
        "nothing may be written for a config that does not parse"
    );
}

#[test]
fn unknown_field_is_named() {
    let (out, wrote) = run_text(&TINY.replace("epochs: 2,", "epochs: 2, epoch_count: 3,"));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("epoch_count"), "{}", stderr(&out));
    assert!(!wrote);
}

#[test]
fn unknown_algorithm_lists_the_known_ones() {
    let (out, wrote) = run_text(&TINY.replace("\"dag_db\"", "\"dag_dbb\""));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("unknown algorithm `dag_dbb`"), "{err}");
    assert!(
        err.contains("known algorithms: dag_db, dag_kl, dag_subtb, dag_tb, ddpo, dpok"),
        "{err}"
    );
    assert!(
        err.contains("sweep.ron:12:"),
        "the position of the name: {err}"
    );
    assert!(!wrote);
}

#[test]
fn unknown_reward_lists_the_known_ones() {
    let (out, wrote) = run_text(&TINY.replace("\"bump\"", "\"aesthetics\""));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("unknown reward `aesthetics`"), "{err}");
    // Every registered reward, in name order.
    let known: Vec<&str> = err
        .split("known rewards: ")
        .nth(1)
        .expect("the known rewards are listed")
        .trim_end()
        .split(", ")
        .collect();
    for name in [
        "aesthetic",
        "brightness",
        "bump",
        "clip_score",
        "hpsv2",
        "mixture",
    ] {
        assert!(known.contains(&name), "{name} missing from {known:?}");
    }
    assert!(known.windows(2).all(|w| w[0] < w[1]), "{known:?}");
    assert!(!wrote);
}

#[test]
fn bad_algorithm_parameter_is_named() {
    let (out, wrote) =
        run_text(&TINY.replace("train_batch: 8, beta: 1.0)", "train_batch: 8, betta: 1.0)"));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("betta") && err.contains("dag_db"), "{err}");
    assert!(
        err.contains("sweep.ron:12:75:"),
        "the position of the field: {err}"
    );
    assert!(!wrote);
}

#[test]
fn an_option_is_chosen_in_ron_syntax_and_a_bad_choice_is_placed() {
    let with = |look: &str| {
        TINY.replace(
            r#"(name: "ddpo", params: (sample_batch: 8, train_batch: 8)),"#,
            &format!(r#"(name: "residual_db", params: (sample_batch: 8, look_ahead: {look})),"#),
        )
    };
    let (out, _) = run_text(&with("Bse"));
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("sweep.ron:11:") && err.contains("`Bse`") && err.contains("`Base`"),
        "{err}"
    );
    let (out, _) = run_text(&with("\"Base\""));
    assert!(stderr(&out).contains("without quotes"), "{}", stderr(&out));
}

/// A reward or metric that cannot read what the environment produces is refused when the sweep
/// is planned, at its position, and nothing is written.
#[test]
fn samples_of_the_wrong_kind_are_refused_at_plan_time() {
    let (out, wrote) = run_text(&TINY.replace(r#"(name: "bump")"#, r#"(name: "brightness")"#));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("sweep.ron:14:15:")
            && err.contains("reward `brightness` scores images")
            && err.contains("Toy2d produces 2-D points"),
        "{err}"
    );
    assert!(!err.contains("panicked") && !wrote);

    let sd = format!(
        r#"Sweep(
    name: "sd",
    env: Sd((model: "{}", prompts: ["a cat"], resolution: 16)),
    epochs: 1,
    algorithms: [(name: "ddpo")],
    rewards: [(name: "mixture")],
)"#,
        crate::support::fixture("sd_tiny").display()
    );
    let (out, wrote) = run_text(&sd);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("sweep.ron:6:15:")
            && err.contains("reward `mixture` scores 2-D points")
            && err.contains("Sd produces images"),
        "{err}"
    );
    assert!(!wrote);

    let metric = TINY.replace(
        "target: (kind: Power, beta: 1.0)),",
        r#"target: (kind: Power, beta: 1.0), metrics: [(name: "image_grid")]),"#,
    );
    let (out, wrote) = run_text(&metric);
    let err = stderr(&out);
    assert!(
        err.contains("sweep.ron:8:") && err.contains("metric `image_grid` reads images"),
        "{err}"
    );
    assert!(!wrote);
}

#[test]
fn missing_file_names_its_path() {
    let out = bench(["run", "/nonexistent/sweep.ron"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("/nonexistent/sweep.ron"));
    let out = bench(["table", "/nonexistent/results"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("/nonexistent/results"));
}

fn parse_pm(cell: &str) -> f64 {
    cell.split('±').next().unwrap().trim().parse().unwrap()
}

#[test]
fn tables_aggregate_seeds_in_three_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("tiny.ron");
    fs::write(&file, TINY).unwrap();
    let results = tmp.path().join("results");
    let out = bench([
        "run",
        file.to_str().unwrap(),
        "--quiet",
        "--results",
        results.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = results.join("tiny");

    // The mean over seeds of each run's final `reward`, read back from eval.csv.
    let mut finals: Vec<(String, f64)> = Vec::new();
    for run in fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()) {
        let config = fs::read_to_string(run.join("config.ron")).unwrap();
        let alg = if config.contains("\"dag_db\"") {
            "dag_db"
        } else {
            "ddpo"
        };
        let eval = fs::read_to_string(run.join("eval.csv")).unwrap();
        let v: f64 = eval
            .lines()
            .find(|l| l.starts_with("2,reward,"))
            .unwrap()
            .split(',')
            .nth(2)
            .unwrap()
            .parse()
            .unwrap();
        finals.push((alg.to_string(), v));
    }
    let mean = |a: &str| {
        let v: Vec<f64> = finals.iter().filter(|f| f.0 == a).map(|f| f.1).collect();
        assert_eq!(v.len(), 2);
        v.iter().sum::<f64>() / 2.0
    };

    let csv_out = bench(["table", dir.to_str().unwrap(), "--format", "csv"]);
    let text = String::from_utf8_lossy(&csv_out.stdout).to_string();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().clone();
    let col = header.iter().position(|h| h == "reward_mean").unwrap();
    for rec in reader.records().map(Result::unwrap) {
        assert_eq!(&rec[2], "2", "two seeds per row");
        let got: f64 = rec[col].parse().unwrap();
        assert!((got - mean(&rec[1])).abs() < 1e-9, "{} {got}", &rec[1]);
    }

    let md = String::from_utf8_lossy(&bench(["table", dir.to_str().unwrap()]).stdout).to_string();
    let ddpo_row = md.lines().find(|l| l.contains("| ddpo |")).unwrap();
    let reward_cell = ddpo_row.split('|').nth(5).unwrap();
    assert!((parse_pm(reward_cell) - mean("ddpo")).abs() < 1e-3, "{md}");

    let tex = String::from_utf8_lossy(
        &bench(["table", dir.to_str().unwrap(), "--format", "latex"]).stdout,
    )
    .to_string();
    assert!(tex.contains("\\begin{tabular}") && tex.contains("dag\\_db") && tex.contains("$\\pm$"));
    assert!(Path::new(&dir).exists());
}

#[test]
fn one_sample_per_prompt_against_a_target_is_refused_before_running() {
    // The unbiased MMD² needs two samples a side; one used to panic at the first evaluation.
    for metrics in ["", ", metrics: [(name: \"target_shape\")]"] {
        let text = TINY.replace(
            "samples_per_prompt: 50, target: (kind: Power, beta: 1.0)",
            &format!("samples_per_prompt: 1, target: (kind: Power, beta: 1.0){metrics}"),
        );
        let (out, wrote) = run_text(&text);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            err.contains("at least 2 samples per prompt (eval.samples_per_prompt = 1)"),
            "{err}"
        );
        assert!(err.contains("sweep.ron:"), "{err}");
        assert!(!wrote);
    }
}

#[test]
fn a_schedule_past_the_training_steps_is_refused_at_its_position() {
    // 1000 "leading" steps with SD's offset 1 reach timestep 1000 of 0..999: refused where the
    // schedule is written, before anything runs (it used to surface only when a run began).
    let text = TINY.replace(
        "guidance: 1.0)",
        "guidance: 1.0, schedule: (inference_steps: 1000))",
    );
    let (out, wrote) = run_text(&text);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("sweep.ron:5:"), "{err}");
    assert!(err.contains("beyond the 1000 training steps"), "{err}");
    assert!(!wrote);
}
