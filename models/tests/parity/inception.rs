//! pytorch-fid's FID Inception at full size (tools/fixtures/make_inception.py): the network is
//! given deterministic weights (`deterministic_weights`) that the fixture script handed
//! pytorch-fid's own loader, written
//! here to a state-dict file under the real checkpoint's keys and loaded by the real loader;
//! pool3 features and the resize path equal pytorch-fid's.

use burn::backend::Flex;
use burn::tensor::Tensor;

use bench_models::inception::{write_deterministic_weights, FidInception};

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
