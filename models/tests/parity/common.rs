//! Reading the committed parity fixtures (written by tools/fixtures/make_sd_tiny.py).
#![allow(dead_code)]

use std::path::PathBuf;

use safetensors::{Dtype, SafeTensors};

pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(rel)
}

/// A named tensor of a fixture file: its values (f32 or i64 widened to f64) and shape.
pub fn tensor(file: &str, name: &str) -> (Vec<f64>, Vec<usize>) {
    let bytes = std::fs::read(fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let view = st
        .tensor(name)
        .unwrap_or_else(|e| panic!("{file}:{name}: {e}"));
    let data = view.data();
    let values = match view.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        Dtype::U8 => data.iter().map(|&b| f64::from(b)).collect(),
        Dtype::I64 => data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        other => panic!("{file}:{name}: unexpected dtype {other:?}"),
    };
    (values, view.shape().to_vec())
}

pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// A fixture tensor as an f32 burn tensor.
pub fn input<B: burn::tensor::backend::Backend, const D: usize>(
    file: &str,
    name: &str,
) -> burn::tensor::Tensor<B, D> {
    let (v, s) = tensor(file, name);
    let v: Vec<f32> = v.into_iter().map(|x| x as f32).collect();
    burn::tensor::Tensor::from_data(burn::tensor::TensorData::new(v, s), &Default::default())
}

/// (max abs error, max |expected|) of `got` against the fixture tensor `name`, whose shape
/// must be `got`'s.
pub fn compare<B: burn::tensor::backend::Backend, const D: usize>(
    got: burn::tensor::Tensor<B, D>,
    file: &str,
    name: &str,
) -> (f64, f64) {
    let (expected, shape) = tensor(file, name);
    assert_eq!(got.dims().to_vec(), shape, "{file}:{name}");
    let got: Vec<f64> = got
        .into_data()
        .to_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect();
    let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let err = max_abs_diff(&got, &expected);
    // Shown with `--nocapture`: the errors the test comments quote.
    eprintln!("{file}:{name}: max abs error {err:.2e}, max |expected| {scale:.2}");
    (err, scale)
}

/// `ours` (from `weights::expected_tensors`) is exactly the (key, shape) list of the real SD v1.5
/// `component` recorded by the fixture script, and so is its parameter count (summed from the
/// shapes, as `Module::num_params` would materialise lazily initialised weights).
pub fn assert_matches_real_sd15(component: &str, ours: &[(String, Vec<usize>)]) {
    let text = std::fs::read_to_string(fixture("sd15_real_keys.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let real = &json[component];
    let mut expected: Vec<(String, Vec<usize>)> =
        serde_json::from_value(real["tensors"].clone()).unwrap();
    expected.sort();
    assert_eq!(ours, expected.as_slice(), "{component}");
    let count: usize = ours.iter().map(|(_, s)| s.iter().product::<usize>()).sum();
    assert_eq!(
        count as u64,
        real["num_parameters"].as_u64().unwrap(),
        "{component}"
    );
}

/// A fixture's `input_ids` and, from its `attention_mask`, the padded positions (true).
pub fn ids_and_padding<B: burn::tensor::backend::Backend>(
    file: &str,
) -> (
    burn::tensor::Tensor<B, 2, burn::tensor::Int>,
    burn::tensor::Tensor<B, 2, burn::tensor::Bool>,
) {
    use burn::tensor::{Tensor, TensorData};
    let device = Default::default();
    let (ids, shape) = tensor(file, "input_ids");
    let (mask, _) = tensor(file, "attention_mask");
    let ids = Tensor::from_data(
        TensorData::new(ids.iter().map(|&v| v as i64).collect(), shape.clone()),
        &device,
    );
    let padding = Tensor::from_data(
        TensorData::new(mask.iter().map(|&m| m == 0.0).collect(), shape),
        &device,
    );
    (ids, padding)
}

/// A file header (f32 tensors) from a fixture's key and shape list.
pub fn header_of<'a>(
    shapes: impl IntoIterator<Item = (&'a String, &'a Vec<usize>)>,
) -> bench_models::weights::Header {
    shapes
        .into_iter()
        .map(|(k, shape)| {
            let info = bench_models::weights::TensorInfo {
                dtype: "F32".into(),
                shape: shape.clone(),
            };
            (k.clone(), info)
        })
        .collect()
}
