//! pytorch-fid's FID Inception at full size (tools/fixtures/make_inception.py): the network is
//! given deterministic weights that the fixture script handed pytorch-fid's own loader, written
//! here to a state-dict file under the real checkpoint's keys and loaded by the real loader;
//! pool3 features and the resize path equal pytorch-fid's.

use std::collections::BTreeMap;

use burn::backend::Flex;
use burn::tensor::Tensor;

use bench_models::inception::FidInception;

use crate::common::{compare, fixture, input};

const IO: &str = "inception/io.safetensors";

/// The fixture script's `unit`: a 32-bit integer hash of (tensor, element) in [−0.5, 0.5).
fn unit(t: u64, i: u64) -> f64 {
    let mut h = (i * 2_654_435_761 + t * 40_503 + 12_345) & 0xFFFF_FFFF;
    h ^= h >> 16;
    h = (h * 0x45D_9F3B) & 0xFFFF_FFFF;
    h ^= h >> 16;
    h as f64 / 4_294_967_296.0 - 0.5
}

fn value(t: u64, key: &str, shape: &[usize], i: u64) -> f32 {
    let u = unit(t, i);
    let v = if key.ends_with("conv.weight") {
        let fan_in: usize = shape[1..].iter().product();
        u * 12f64.sqrt() * (2.0 / fan_in as f64).sqrt()
    } else if key.ends_with("bn.weight") {
        1.0 + 0.2 * u
    } else if key.ends_with("running_var") {
        1.0 + 0.4 * u
    } else if key.starts_with("fc.") {
        0.01 * u
    } else {
        0.2 * u
    };
    v as f32
}

/// The deterministic state dict as a safetensors file, with the real checkpoint's keys.
fn write_weights(dir: &std::path::Path) -> (std::path::PathBuf, Vec<(String, Vec<usize>)>) {
    let keys: Vec<(String, Vec<usize>)> = serde_json::from_str(
        &std::fs::read_to_string(fixture("inception/keys.json")).unwrap(),
    )
    .unwrap();
    let data: BTreeMap<String, (Vec<usize>, Vec<u8>)> = keys
        .iter()
        .enumerate()
        .map(|(t, (key, shape))| {
            let n: usize = shape.iter().product();
            let bytes = (0..n as u64)
                .flat_map(|i| value(t as u64, key, shape, i).to_le_bytes())
                .collect();
            (key.clone(), (shape.clone(), bytes))
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = data
        .iter()
        .map(|(k, (shape, bytes))| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                    .unwrap();
            (k.clone(), view)
        })
        .collect();
    let path = dir.join("pt_inception.safetensors");
    safetensors::serialize_to_file(views, None, &path).unwrap();
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
    assert!(err <= 1e-4 * scale.max(1.0), "features: {err} (scale {scale})");
}
