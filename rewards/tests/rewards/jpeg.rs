//! The JPEG rewards measure what DDPO's code measures with Pillow: the sizes of
//! `fixtures/jpeg/`'s images, written by tools/fixtures/jpeg_sizes.py with Pillow 13.0.0
//! (libjpeg-turbo 3.2), at quality 95 and 50.

use std::path::PathBuf;

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Tensor, TensorData};

use bench_rewards::image::jpeg::encode_jpeg;
use bench_rewards::{builtin_reward, require_gradient, Reward};

type B = Autodiff<Flex>;

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/jpeg")
        .join(rel)
}

/// A fixture image as 8-bit RGB.
struct Fixture {
    name: String,
    rgb: Vec<u8>,
    size: [usize; 2],
    /// Pillow's file sizes at quality 95 and 50.
    q95: u64,
    q50: u64,
}

/// Every fixture image with Pillow's file sizes.
fn fixtures() -> Vec<Fixture> {
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("pillow_sizes.json")).unwrap())
            .unwrap();
    let sizes = meta["sizes_in_bytes"].as_object().unwrap();
    assert_eq!(sizes.len(), 7);
    sizes
        .iter()
        .map(|(name, s)| {
            let image = image::open(fixture(&format!("{name}.png")))
                .unwrap()
                .to_rgb8();
            let (w, h) = (image.width() as usize, image.height() as usize);
            Fixture {
                name: name.clone(),
                rgb: image.into_raw(),
                size: [h, w],
                q95: s["quality_95"].as_u64().unwrap(),
                q50: s["quality_50"].as_u64().unwrap(),
            }
        })
        .collect()
}

#[test]
fn sizes_equal_pillows() {
    for Fixture {
        name,
        rgb,
        size: [h, w],
        q95,
        q50,
    } in fixtures()
    {
        for (quality, pillow) in [(95, q95), (50, q50)] {
            let ours = encode_jpeg(&rgb, w, h, quality).unwrap().len() as u64;
            // Byte-identical files where measured; the bound is 1 %.
            assert!(
                (ours as f64 / pillow as f64 - 1.0).abs() <= 0.01,
                "{name} at quality {quality}: {ours} bytes, Pillow {pillow}"
            );
            assert_eq!(ours, pillow, "{name} at quality {quality}");
        }
    }
}

#[test]
fn rewards_score_images_in_unit_range_as_kilobytes() {
    let incompressibility: Box<dyn Reward<B>> =
        builtin_reward::<B>("jpeg_incompressibility", &Default::default()).unwrap();
    let compressibility: Box<dyn Reward<B>> =
        builtin_reward::<B>("jpeg_compressibility", &Default::default()).unwrap();
    for Fixture {
        name,
        rgb,
        size: [h, w],
        q95,
        ..
    } in fixtures()
    {
        // [1, 3, H, W] in [0, 1], as environments decode samples.
        let mut planar = vec![0.0f32; 3 * h * w];
        for p in 0..h * w {
            for c in 0..3 {
                planar[c * h * w + p] = f32::from(rgb[3 * p + c]) / 255.0;
            }
        }
        let images: Tensor<Flex, 4> =
            Tensor::from_data(TensorData::new(planar, [1, 3, h, w]), &Default::default());
        let prompts = ["".to_string()];
        let up = incompressibility
            .score(images.clone(), &prompts)
            .into_scalar();
        let down = compressibility.score(images, &prompts).into_scalar();
        let kb = q95 as f32 / 1000.0;
        assert_eq!(up, kb, "{name}");
        assert_eq!(down, -kb, "{name}");
    }
    // Nothing to differentiate: gradient methods are refused.
    assert!(require_gradient("algorithm `refl`", incompressibility.as_ref()).is_err());
}

#[test]
fn out_of_range_values_are_clamped_and_empty_images_refused() {
    let reward: Box<dyn Reward<B>> =
        builtin_reward::<B>("jpeg_incompressibility", &Default::default()).unwrap();
    let grey = |v: f32| -> Tensor<Flex, 4> {
        Tensor::from_data(
            TensorData::new(vec![v; 3 * 16 * 16], [1, 3, 16, 16]),
            &Default::default(),
        )
    };
    let prompts = ["".to_string()];
    let white = reward.score(grey(1.0), &prompts).into_scalar();
    assert_eq!(reward.score(grey(7.5), &prompts).into_scalar(), white);
    assert!(encode_jpeg(&[], 0, 0, 95).is_err());
}
