//! `bench sample` and `bench doctor` on the tiny SD fixture folder. From the initial latents
//! diffusers' pipeline started from (`--noise`, or `--seed` of its torch generator),
//! `bench sample` writes the images diffusers wrote (DDIM with η = 0, DPM-Solver++ 2M, and
//! DDIM with the peft LoRA), to the 8-bit level;
//! `doctor` reports a complete folder and names what a broken one lacks.

use std::fs;
use std::path::Path;

use crate::support::{bench, bench_ok, expected_pixels, fixture, max_level_diff};

/// Runs `bench sample` with the fixture's prompts and latents; returns each image's pixels.
fn sample(dir: &Path, extra: &[&str]) -> Vec<Vec<u8>> {
    let noise = fixture("sd_tiny/sample.safetensors");
    let mut args = vec!["--noise", noise.to_str().unwrap()];
    args.extend_from_slice(extra);
    sample_with(dir, &args)
}

/// Runs `bench sample` with the fixture's prompts and `extra`; returns each image's pixels.
fn sample_with(dir: &Path, extra: &[&str]) -> Vec<Vec<u8>> {
    let out = dir.join("img.png");
    let model = fixture("sd_tiny");
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
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    bench_ok(&args);
    (0..2)
        .map(|i| {
            image::open(dir.join(format!("img-{i:03}.png")))
                .unwrap()
                .to_rgb8()
                .into_raw()
        })
        .collect()
}

#[test]
fn sample_reproduces_diffusers_images_from_the_same_noise() {
    let tmp = tempfile::tempdir().unwrap();
    let lora = fixture("sd_tiny/lora/pytorch_lora_weights.safetensors");
    let lora = lora.to_str().unwrap();
    let cases: [(&str, &[&str]); 3] = [
        ("ddim_images", &["--steps", "4", "--eta", "0"]),
        ("dpmpp_images", &["--steps", "5", "--sampler", "dpm-solver"]),
        (
            "lora_ddim_images",
            &["--steps", "4", "--eta", "0", "--lora", lora],
        ),
    ];
    for (name, extra) in cases {
        let ours = sample(tmp.path(), extra);
        for (i, (a, b)) in ours
            .iter()
            .zip(expected_pixels("sd_tiny/sample.safetensors", name))
            .enumerate()
        {
            let d = max_level_diff(a, &b);
            // f32 differences of ~1e-5 can flip a rounding: one 8-bit level at most.
            assert!(d <= 1, "{name} image {i}: off by {d} levels");
        }
    }
    // The three settings give different images, so each comparison above tests its own.
    let ddim = expected_pixels("sd_tiny/sample.safetensors", "ddim_images");
    for other in ["dpmpp_images", "lora_ddim_images"] {
        assert!(
            max_level_diff(
                &ddim[0],
                &expected_pixels("sd_tiny/sample.safetensors", other)[0]
            ) > 10
        );
    }
}

/// The fixture's latents are `torch.randn(generator=torch.Generator().manual_seed(7))`, so
/// `--seed 7` alone gives diffusers' images.
#[test]
fn seed_gives_diffusers_images_for_the_same_torch_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let ours = sample_with(tmp.path(), &["--steps", "4", "--eta", "0", "--seed", "7"]);
    for (i, (a, b)) in ours
        .iter()
        .zip(expected_pixels("sd_tiny/sample.safetensors", "ddim_images"))
        .enumerate()
    {
        let d = max_level_diff(a, &b);
        assert!(d <= 1, "image {i}: off by {d} levels");
    }
    let other = sample_with(tmp.path(), &["--steps", "4", "--eta", "0", "--seed", "8"]);
    assert!(max_level_diff(&other[0], &ours[0]) > 10);
}

#[test]
fn sample_refuses_latents_of_the_wrong_shape() {
    let tmp = tempfile::tempdir().unwrap();
    let model = fixture("sd_tiny");
    let noise = fixture("sd_tiny/sample.safetensors");
    // Three images requested, two latents in the file.
    let out = bench([
        "sample",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "a",
        "--per-prompt",
        "3",
        "--resolution",
        "16",
        "--noise",
        noise.to_str().unwrap(),
        "--out",
        tmp.path().join("x.png").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[3, 4, 8, 8]") && err.contains("[2, 4, 8, 8]"),
        "{err}"
    );
    assert!(fs::read_dir(tmp.path()).unwrap().next().is_none());
}

#[test]
fn doctor_reports_found_and_missing_files() {
    let out = bench(["doctor", "--model", fixture("sd_tiny").to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for part in ["tokenizer", "text_encoder", "unet", "vae"] {
        assert!(text.contains(&format!("ok       {part}")), "{text}");
    }

    // A copy without the VAE weights and with a UNet file of another model.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    for dir in ["tokenizer", "text_encoder", "unet", "vae"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    for file in [
        "model_index.json",
        "tokenizer/vocab.json",
        "tokenizer/merges.txt",
        "text_encoder/config.json",
        "text_encoder/model.safetensors",
        "unet/config.json",
        "vae/config.json",
    ] {
        fs::copy(fixture("sd_tiny").join(file), root.join(file)).unwrap();
    }
    fs::copy(
        fixture("sd_tiny/text_encoder/model.safetensors"),
        root.join("unet/diffusion_pytorch_model.safetensors"),
    )
    .unwrap();
    let out = bench(["doctor", "--model", root.to_str().unwrap()]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("MISFIT   unet"), "{text}");
    assert!(text.contains("`conv_in.weight`: missing"), "{text}");
    assert!(
        text.contains("MISSING  vae") && text.contains("diffusion_pytorch_model.safetensors"),
        "{text}"
    );
    assert!(
        text.contains("huggingface.co/stable-diffusion-v1-5"),
        "{text}"
    );
}
