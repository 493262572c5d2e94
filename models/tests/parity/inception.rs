//! pytorch-fid's FID Inception at full size (tools/fixtures/make_inception.py): the network is
//! given deterministic weights (`deterministic_weights`) that the fixture script handed
//! pytorch-fid's own loader, written
//! here to a state-dict file under the real checkpoint's keys and loaded by the real loader;
//! pool3 features and the resize path equal pytorch-fid's.

use burn::backend::Flex;
use burn::tensor::Tensor;

use bench_models::inception::{write_deterministic_weights, FidInception, FidResize};

use crate::common::{compare, fixture, input};

const IO: &str = "inception/io.safetensors";

/// The deterministic state dict as a safetensors file, with the real checkpoint's keys.
fn write_weights(dir: &std::path::Path) -> (std::path::PathBuf, Vec<(String, Vec<usize>)>) {
    let keys: Vec<(String, Vec<usize>)> =
        serde_json::from_str(&std::fs::read_to_string(fixture("inception/keys.json")).unwrap())
            .unwrap();
    let path = dir.join("pt_inception.safetensors");
    write_deterministic_weights(&keys, &path).unwrap();
    (path, keys)
}

#[test]
fn fid_inception_features_equal_pytorch_fid() {
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    let (path, keys) = write_weights(dir.path());
    // Every tensor of the checkpoint's layout but the unused classifier is read.
    let report = FidInception::<Flex>::check(&path, &device).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let used: usize = keys
        .iter()
        .filter(|(k, _)| !k.starts_with("fc."))
        .map(|(_, s)| s.iter().product::<usize>())
        .sum();
    assert_eq!(report.parameters, used);

    let model = FidInception::<Flex>::load(&path, &device).unwrap();
    let images: Tensor<Flex, 4> = input(IO, "images");
    let strip = FidInception::pixels(images.clone()).slice([0..1, 0..3, 140..160, 0..299]);
    let (err, _) = compare(strip, IO, "pixels_rows_140_160");
    assert!(err <= 1e-5, "resized pixels: {err}");
    let (err, scale) = compare(model.features(images), IO, "features");
    assert!(
        err <= 1e-4 * scale.max(1.0),
        "features: {err} (scale {scale})"
    );
}

/// The 400×520 pattern of tools/fixtures/clean_fid_resize.py, as levels.
fn pattern() -> Tensor<Flex, 4> {
    let (h, w) = (400usize, 520usize);
    let mut v = vec![0f32; 3 * h * w];
    for c in 0..3 {
        for i in 0..h {
            for j in 0..w {
                v[(c * h + i) * w + j] = ((7 * i + 13 * j + 50 * c + (i * j) % 31) % 256) as f32;
            }
        }
    }
    Tensor::from_data(
        burn::tensor::TensorData::new(v, [1, 3, h, w]),
        &Default::default(),
    )
}

#[test]
fn clean_fid_resize_and_features_equal_clean_fids_resize_on_pytorch_fids_network() {
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_weights(dir.path());
    let model = FidInception::<Flex>::load(&path, &device).unwrap();
    let file = "inception/clean_fid.safetensors";
    let png = image::open(fixture("inception/folder/0.png"))
        .unwrap()
        .to_rgb8();
    let (w, h) = png.dimensions();
    let levels: Vec<f32> = (0..3)
        .flat_map(|c| png.pixels().map(move |p| f32::from(p[c])))
        .collect();
    let folder0 = Tensor::<Flex, 4>::from_data(
        burn::tensor::TensorData::new(levels, [1, 3, h as usize, w as usize]),
        &device,
    );
    for (name, levels) in [("pattern", pattern()), ("folder0", folder0)] {
        let images = levels / 255.0;
        let pixels = FidInception::pixels_with(images.clone(), FidResize::CleanFid);
        let rows = ((pixels + 1.0) * 127.5).slice([0..1, 0..3, 140..150, 0..299]);
        let (err, _) = compare(rows, file, &format!("{name}.rows_140_150"));
        assert!(err <= 255.0 * 1e-6, "{name}: resized levels {err}");
        let features = model.features_with(images, FidResize::CleanFid);
        let (err, scale) = compare(features, file, &format!("{name}.features"));
        assert!(
            err <= 1e-4 * scale.max(1.0),
            "{name}: features {err} (scale {scale})"
        );
    }
}
