//! `bench sample` and `bench doctor` on SD v1 in other layouts than the plain diffusers folder:
//! a text encoder saved by transformers 5, diffusers' fp16 variant files, a single-file
//! checkpoint with the original key names. From the same initial latents `bench sample` writes
//! the images diffusers wrote for each (to the 8-bit level), and `doctor` says what a single file
//! holds and what a broken one lacks.

use std::fs;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::SafeTensors;

use crate::support::{bench, bench_ok, expected_pixels, fixture, max_level_diff};

/// `bench sample` on `model` with the fixtures' prompts, latents and CFG 7.5; each image's pixels.
fn sample(model: &Path, out: &Path, extra: &[&str]) -> Vec<Vec<u8>> {
    let noise = fixture("sd_layouts/sample.safetensors");
    let png = out.join("img.png");
    let mut args = vec![
        "sample",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "a photo of a cat",
        "--prompt",
        "an astronaut riding a horse",
        "--cfg",
        "7.5",
        "--resolution",
        "16",
        "--quiet",
        "--noise",
        noise.to_str().unwrap(),
        "--out",
        png.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    bench_ok(&args);
    (0..2)
        .map(|i| {
            image::open(out.join(format!("img-{i:03}.png")))
                .unwrap()
                .to_rgb8()
                .into_raw()
        })
        .collect()
}

fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            fs::copy(entry.path(), to).unwrap();
        }
    }
}

/// Each layout's images equal diffusers' (one 8-bit level: f32 differences of ~1e-5 can flip a
/// rounding). The transformers 5 encoder holds sd_tiny's weights, so its images are sd_tiny's;
/// the fp16 variant's encoder is rounded to fp16, so it has its own; the single file's
/// DPM-Solver images use "linspace" timesteps (SD v1.5's scheduler config, which
/// `from_single_file` uses), its DDIM ones "leading".
#[test]
fn sample_reproduces_diffusers_images_for_every_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let ddim: &[&str] = &["--steps", "4", "--eta", "0"];
    let dpm: &[&str] = &["--steps", "5", "--sampler", "dpm-solver"];

    let tf5 = tmp.path().join("tf5");
    copy_dir(&fixture("sd_tiny"), &tf5);
    fs::remove_dir_all(tf5.join("text_encoder")).unwrap();
    copy_dir(
        &fixture("sd_layouts/tf5_text_encoder"),
        &tf5.join("text_encoder"),
    );

    let variant = tmp.path().join("fp16");
    copy_dir(&fixture("sd_layouts/fp16_variant"), &variant);
    for part in ["unet", "vae"] {
        // diffusers' variant files for these are sd_tiny's fp16 files byte for byte.
        fs::copy(
            fixture(&format!(
                "sd_tiny/{part}/diffusion_pytorch_model.safetensors"
            )),
            variant.join(format!("{part}/diffusion_pytorch_model.fp16.safetensors")),
        )
        .unwrap();
    }

    let single = fixture("sd_layouts/tiny_ldm.safetensors");
    let cases: [(&Path, &[&str], &str, &str); 4] = [
        (&tf5, ddim, "sd_tiny/sample.safetensors", "ddim_images"),
        (
            &variant,
            ddim,
            "sd_layouts/sample.safetensors",
            "fp16_variant_ddim_images",
        ),
        (
            &single,
            ddim,
            "sd_layouts/sample.safetensors",
            "tiny_ldm_ddim_images",
        ),
        (
            &single,
            dpm,
            "sd_layouts/sample.safetensors",
            "tiny_ldm_dpmpp_images",
        ),
    ];
    let mut worst = 0;
    for (i, (model, extra, file, name)) in cases.into_iter().enumerate() {
        let out = tmp.path().join(format!("out{i}"));
        fs::create_dir_all(&out).unwrap();
        let ours = sample(model, &out, extra);
        for (k, (a, b)) in ours.iter().zip(expected_pixels(file, name)).enumerate() {
            let d = max_level_diff(a, &b);
            worst = worst.max(d);
            assert!(d <= 1, "{name} image {k}: off by {d} levels");
        }
    }
    eprintln!("layouts: max 8-bit difference {worst}");
    // Each comparison tests its own setting: the images differ between layouts and samplers.
    let single_ddim = expected_pixels("sd_layouts/sample.safetensors", "tiny_ldm_ddim_images");
    for (file, other) in [
        ("sd_layouts/sample.safetensors", "tiny_ldm_dpmpp_images"),
        ("sd_layouts/sample.safetensors", "fp16_variant_ddim_images"),
        ("sd_tiny/sample.safetensors", "ddim_images"),
    ] {
        assert!(max_level_diff(&single_ddim[0], &expected_pixels(file, other)[0]) > 10);
    }
    let fp32 = expected_pixels("sd_tiny/sample.safetensors", "ddim_images");
    let fp16 = expected_pixels("sd_layouts/sample.safetensors", "fp16_variant_ddim_images");
    assert!(max_level_diff(&fp32[0], &fp16[0]) > 0);
}

/// `doctor` on a single file names the components it found (key namespace, inferred config)
/// and the built-in tokenizer; on a file without a VAE and with a mis-shaped UNet tensor it
/// names both and fails.
#[test]
fn doctor_reports_what_a_single_file_holds() {
    let single = fixture("sd_layouts/tiny_ldm.safetensors");
    let out = bench(["doctor", "--model", single.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for part in [
        "single-file checkpoint",
        "ok       text_encoder: `cond_stage_model.transformer.*` (CLIP, 2 layers, width 12, 49408 tokens",
        "ok       unet: `model.diffusion_model.*` (channels [32, 32]",
        "ok       vae: `first_stage_model.*` (channels [32, 32]",
        "ok       tokenizer: SD v1's CLIP tokenizer",
    ] {
        assert!(text.contains(part), "{part:?} not in:\n{text}");
    }

    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("broken.safetensors");
    let q = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight";
    let bytes = fs::read(&single).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, TensorView)> = st
        .tensors()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("first_stage_model."))
        .map(|(name, v)| {
            let shape = if name == q {
                vec![16, 64]
            } else {
                v.shape().to_vec()
            };
            let view = TensorView::new(v.dtype(), shape, v.data()).unwrap();
            (name, view)
        })
        .collect();
    safetensors::serialize_to_file(kept, None, &broken).unwrap();
    let out = bench(["doctor", "--model", broken.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    for part in [
        "MISFIT   unet",
        &format!("`{q}`: expected shape [32, 32], found [16, 64]"),
        "MISSING  vae",
        "no VAE in this file (no `first_stage_model.*` keys)",
        "v1-5-pruned-emaonly.safetensors",
    ] {
        assert!(text.contains(part), "{part:?} not in:\n{text}");
    }
}

/// `sample` with a model path where there is nothing names the path, both layouts and where to
/// get SD v1.5, as a file or a folder.
#[test]
fn sample_names_a_missing_model() {
    let tmp = tempfile::tempdir().unwrap();
    let nowhere = tmp.path().join("v1-5-pruned-emaonly.safetensors");
    let out = bench([
        "sample",
        "--model",
        nowhere.to_str().unwrap(),
        "--prompt",
        "a",
        "--out",
        tmp.path().join("x.png").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for part in [
        nowhere.to_str().unwrap(),
        "a diffusers folder, or a single-file .safetensors checkpoint",
        "huggingface-cli download stable-diffusion-v1-5/stable-diffusion-v1-5 v1-5-pruned-emaonly.safetensors",
    ] {
        assert!(err.contains(part), "{part:?} not in:\n{err}");
    }
}
