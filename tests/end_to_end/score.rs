//! `bench score`: a folder of images scored with a reward, as CSV.

use std::fs;

use crate::support::{bench, bench_ok, fixture};

/// The `score` column of `bench score`'s CSV.
fn score_column(out: std::process::Output) -> Vec<f64> {
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split_once(',').unwrap().1.parse().unwrap())
        .collect()
}

#[test]
fn jpeg_sizes_of_a_folder_are_pillows_in_file_name_order() {
    let meta: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(fixture("jpeg/pillow_sizes.json")).unwrap())
            .unwrap();
    let out = bench_ok([
        "score".as_ref(),
        "--reward".as_ref(),
        "jpeg_compressibility".as_ref(),
        "--images".as_ref(),
        fixture("jpeg").as_os_str(),
        "--batch".as_ref(),
        "3".as_ref(),
        "--quiet".as_ref(),
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("file,score"));
    let rows: Vec<(String, f64)> = lines
        .map(|l| {
            let (file, score) = l.split_once(',').unwrap();
            (file.to_string(), score.parse().unwrap())
        })
        .collect();
    let mut names: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    names.sort();
    assert_eq!(names, rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>());
    assert_eq!(rows.len(), 7);
    for (file, score) in rows {
        let name = file.strip_suffix(".png").unwrap();
        let bytes = meta["sizes_in_bytes"][name]["quality_95"].as_f64().unwrap();
        assert!((score + bytes / 1000.0).abs() < 1e-6, "{file}: {score}");
    }
}

#[test]
fn bad_score_requests_are_named() {
    let images = fixture("jpeg");
    let err = |args: &[&str]| {
        let mut all: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
        all.extend(["--images".into(), images.clone().into_os_string()]);
        let out = bench(all);
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    };
    assert!(err(&["score", "--reward", "bump"]).contains("not images"));
    assert!(err(&["score", "--reward", "nope"]).contains("jpeg_compressibility"));
    assert!(err(&[
        "score",
        "--reward",
        "jpeg_compressibility",
        "--params",
        "(quality: 0)"
    ])
    .contains("quality"));
    let tmp = tempfile::tempdir().unwrap();
    let prompts = tmp.path().join("prompts.txt");
    fs::write(&prompts, "a\nb\n").unwrap();
    let message = err(&[
        "score",
        "--reward",
        "brightness",
        "--prompt-file",
        prompts.to_str().unwrap(),
    ]);
    assert!(message.contains("2 prompts for 7 images"), "{message}");
    let empty = bench([
        "score",
        "--reward",
        "brightness",
        "--images",
        tmp.path().to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&empty.stderr).contains("no .png, .jpg or .jpeg files"));
}

#[test]
fn jpeg_rewards_run_with_ddpo_on_tiny_sd_and_are_refused_to_gradient_methods() {
    let sweep = |algorithm: &str, params: &str| {
        format!(
            r#"Sweep(
                name: "jpeg",
                env: Sd((model: "{}", prompts: ["a cat"], resolution: 16)),
                sampler: (schedule: (inference_steps: 4)),
                epochs: 1,
                checkpoint_every: 1,
                eval: (every: 1, samples_per_prompt: 2),
                seeds: [0],
                algorithms: [(name: "{algorithm}", params: {params})],
                rewards: [(name: "jpeg_incompressibility")],
            )"#,
            fixture("sd_tiny").display()
        )
    };
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("jpeg.ron");
    fs::write(&file, sweep("refl", "(stop_steps: (1, 3))")).unwrap();
    let results = tmp.path().join("results");
    let out = bench([
        "run",
        file.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("not differentiable"), "{stderr}");
    assert!(!results.exists());
    fs::write(&file, sweep("ddpo", "(sample_batch: 2, train_batch: 2)")).unwrap();
    bench_ok([
        "run",
        file.to_str().unwrap(),
        "--quiet",
        "--results",
        results.to_str().unwrap(),
    ]);
    let found = bench::table::collect(&results.join("jpeg"), None).unwrap();
    let reward = found.runs[0].metrics()["reward"];
    // A 16×16 decoded sample is a few hundred bytes of JPEG.
    assert!(reward > 0.3 && reward < 2.0, "{reward}");
}

#[test]
fn network_rewards_train_gradient_methods_on_tiny_sd_and_score_a_folder() {
    let tmp = tempfile::tempdir().unwrap();
    // The reward's files beside the sweep, named relative to it: found from the sweep's
    // folder whatever the working directory.
    let weights = tmp.path().join("weights");
    fs::create_dir_all(weights.join("clip")).unwrap();
    for name in ["config.json", "model.safetensors"] {
        fs::copy(
            fixture(&format!("reward_nets/clip_tiny/{name}")),
            weights.join("clip").join(name),
        )
        .unwrap();
    }
    fs::copy(
        fixture("reward_nets/aesthetic_head_tiny.safetensors"),
        weights.join("head.safetensors"),
    )
    .unwrap();
    let relative = r#"(clip: "weights/clip", head: "weights/head.safetensors")"#;
    let params = format!(
        r#"(clip: "{}", head: "{}")"#,
        weights.join("clip").display(),
        weights.join("head.safetensors").display()
    );
    let text = format!(
        r#"Sweep(
            name: "aesthetic",
            env: Sd((model: "{}", prompts: ["a cat"], resolution: 16)),
            sampler: (schedule: (inference_steps: 4)),
            epochs: 1,
            checkpoint_every: 1,
            eval: (every: 1, samples_per_prompt: 2),
            seeds: [0],
            algorithms: [
                (name: "refl", params: (stop_steps: (1, 3), batch: 2)),
                (name: "draft", params: (k: 1, batch: 2)),
                (name: "nabla_gfn", params: (sample_batch: 2, train_batch: 2, beta: 1.0)),
            ],
            rewards: [
                (name: "aesthetic", params: {relative}),
                (name: "imagereward", params: (
                    checkpoint: "{ir}/image_reward_tiny.pt",
                    med_config: Some("{ir}/med_config.json"),
                    vision_heads: Some(4),
                )),
            ],
        )"#,
        fixture("sd_tiny").display(),
        ir = fixture("image_reward").display(),
    );
    let file = tmp.path().join("aesthetic.ron");
    fs::write(&file, text).unwrap();
    let results = tmp.path().join("results");
    bench_ok([
        "run",
        file.to_str().unwrap(),
        "--quiet",
        "--results",
        results.to_str().unwrap(),
    ]);
    // The three reward-gradient methods, each on both differentiable network rewards.
    let found = bench::table::collect(&results.join("aesthetic"), None).unwrap();
    assert_eq!(found.runs.len(), 6);
    for run in &found.runs {
        assert!(run.metrics()["reward"].is_finite());
    }

    let out = bench_ok([
        "score".as_ref(),
        "--reward".as_ref(),
        "aesthetic".as_ref(),
        "--params".as_ref(),
        params.as_ref(),
        "--images".as_ref(),
        fixture("jpeg").as_os_str(),
        "--quiet".as_ref(),
    ]);
    let scores = score_column(out);
    assert_eq!(scores.len(), 7);
    assert!(scores.iter().all(|s| s.is_finite()));
}

#[test]
fn doctor_checks_reward_files_from_headers_and_clip_score_scores_with_a_prompt() {
    let clip = fixture("reward_nets/clip_tiny");
    let params = format!(
        r#"(clip: "{}", head: "{}")"#,
        clip.display(),
        fixture("reward_nets/aesthetic_head_tiny.pth").display()
    );
    let out = bench_ok(["doctor", "--reward", "aesthetic", "--params", &params]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("ok       clip: CLIP vision tower: ViT: 2 layers of width 32, 30 px in patches of 6, embeddings of 16"),
        "{text}"
    );
    assert!(
        text.contains("ok       head: LAION aesthetic head: linear head 16→20→12→8→6→1"),
        "{text}"
    );
    assert!(
        !text.contains("model:"),
        "no SD model was asked for: {text}"
    );

    // Defaults name files that are not here: each is named with where to get it.
    let out = bench(["doctor", "--reward", "clip_score"]);
    assert!(!out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.matches("MISSING").count(), 2, "{text}");
    assert!(text.contains("openai/clip-vit-large-patch14"), "{text}");
    // A vision-only folder has no text tower: the missing keys are listed.
    let vision_only = format!(
        r#"(clip: "{}")"#,
        fixture("reward_nets/clip_vision_tiny").display()
    );
    let out = bench(["doctor", "--reward", "clip_score", "--params", &vision_only]);
    assert!(!out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("ok       clip: CLIP vision tower"), "{text}");
    assert!(text.contains("clip: CLIP text tower"), "{text}");
    assert!(
        text.contains("a `clip_vision_model` config, with no text tower"),
        "{text}"
    );
    let hps = format!(
        r#"(checkpoint: "{}", config: Some("{}"))"#,
        fixture("openclip/hps_tiny.pt").display(),
        fixture("openclip/hps_tiny_config.json").display()
    );
    let out = bench_ok(["doctor", "--reward", "hpsv2", "--params", &hps]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("ok       checkpoint: HPSv2 (OpenCLIP): OpenCLIP ViT: 2 layers of width 32"),
        "{text}"
    );
    // The real ViT-H/14 does not fit the tiny checkpoint: the first misfit keys are named.
    let tiny_as_h14 = format!(
        r#"(checkpoint: "{}")"#,
        fixture("openclip/hps_tiny.pt").display()
    );
    let out = bench(["doctor", "--reward", "hpsv2", "--params", &tiny_as_h14]);
    assert!(!out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("MISFIT   checkpoint: HPSv2 (OpenCLIP)"),
        "{text}"
    );
    assert!(
        text.contains("`visual.class_embedding`: expected shape [1280], found [32]"),
        "{text}"
    );
    let out = bench(["doctor", "--reward", "jpeg_compressibility"]);
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("no weight files"));

    let out = bench_ok([
        "score".as_ref(),
        "--reward".as_ref(),
        "clip_score".as_ref(),
        "--params".as_ref(),
        format!(r#"(clip: "{}")"#, clip.display()).as_ref(),
        "--images".as_ref(),
        fixture("jpeg").as_os_str(),
        "--prompt".as_ref(),
        "a photo of a cat".as_ref(),
        "--quiet".as_ref(),
    ]);
    let cosines = score_column(out);
    assert_eq!(cosines.len(), 7);
    assert!(cosines.iter().all(|c| c.abs() <= 1.0 + 1e-6), "{cosines:?}");
}

/// `imagereward` through the command line: `bench doctor` reads the sizes off the checkpoint,
/// and `bench score` on PNG files gives the ImageReward package's `score` of the same pixels
/// (fixtures/image_reward/, tools/fixtures/make_image_reward.py).
#[test]
fn imagereward_is_checked_and_scores_png_files_as_the_package() {
    let dir = fixture("image_reward");
    let params = format!(
        r#"(checkpoint: "{}", med_config: Some("{}"), vision_heads: Some(4))"#,
        dir.join("image_reward_tiny.pt").display(),
        dir.join("med_config.json").display()
    );
    let out = bench_ok(["doctor", "--reward", "imagereward", "--params", &params]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("ok       checkpoint: ImageReward (BLIP + BERT + MLP): BLIP ViT: 2 layers"),
        "{text}"
    );
    let out = bench(["doctor", "--reward", "imagereward"]);
    assert!(!out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("MISSING") && text.contains("THUDM/ImageReward"),
        "{text}"
    );

    // The fixture's first image as a PNG, scored with the first prompt.
    let bytes = fs::read(dir.join("io.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let values = |name: &str| -> (Vec<f32>, Vec<usize>) {
        let view = st.tensor(name).unwrap();
        let v = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        (v, view.shape().to_vec())
    };
    let (pixels, shape) = values("processor.image.0");
    let (h, w) = (shape[2], shape[3]);
    let rgb = image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let at = |c: usize| (pixels[(c * h + y as usize) * w + x as usize] * 255.0).round() as u8;
        image::Rgb([at(0), at(1), at(2)])
    });
    let images = tempfile::tempdir().unwrap();
    rgb.save(images.path().join("a.png")).unwrap();
    let tokens: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("tokens.json")).unwrap()).unwrap();
    let prompt = tokens["prompts"][0].as_str().unwrap();
    let out = bench_ok([
        "score".as_ref(),
        "--reward".as_ref(),
        "imagereward".as_ref(),
        "--params".as_ref(),
        params.as_ref(),
        "--images".as_ref(),
        images.path().as_os_str(),
        "--prompt".as_ref(),
        prompt.as_ref(),
        "--quiet".as_ref(),
    ]);
    let got = score_column(out)[0];
    let want = f64::from(values("processor.scores").0[0]);
    assert!((got - want).abs() < 1e-4, "{got} vs {want}");
}
