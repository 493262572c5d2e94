//! pytorch-fid's Inception for the image metrics (`fid_diversity`, `per_prompt_fid`,
//! `image_diversity`): loaded once per process and shared by every run and metric that names
//! the same file, pool3 features of evaluation images in [0, 1] (resized bilinear to 299 and
//! mapped to [−1, 1] as pytorch-fid's `normalize_input` does).
//!
//! Several Inception metrics of one run read the same evaluation batches (each the first of
//! its count); the network keeps the last two batches' features (a batch's samples and its base samples), keyed by run, epoch, prompt and
//! position, so that the second and third metric do not recompute them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use bench_core::BuildContext;
use bench_models::inception::{FidInception, FidResize, FID_WEIGHTS_SOURCE};
use bench_rewards::image::clip_image::cache_key;

pub use bench_models::inception::FEATURES;

use crate::metric::{EvalContext, SampleBatch};

/// The weights file a metric's `weights` parameter names by default.
pub fn default_weights() -> PathBuf {
    "pt_inception-2015-12-05-6726825d.pth".into()
}

/// The network of one weights file and the features of the last batch it saw.
struct Shared<B: Backend> {
    model: FidInception<B>,
    /// The last batches' features, newest last: a batch's samples and its base samples.
    last: Mutex<Vec<(String, Arc<Vec<f32>>)>>,
}

/// The network of one weights file, and how images are resized for it.
pub struct InceptionFeatures<B: Backend> {
    shared: Arc<Shared<B>>,
    resize: FidResize,
}

impl<B: Backend> InceptionFeatures<B> {
    /// The network of `weights` (relative to the sweep's folder), loaded on first use in the
    /// process.
    ///
    /// # Errors
    /// A missing or misfit file, named with the expected keys and where to get the real one.
    pub fn load(
        weights: &Path,
        resize: FidResize,
        cx: &BuildContext<'_, B>,
    ) -> Result<Self, String> {
        let path = cx.path(weights);
        let shared = cx
            .cache
            .get_or_load(&cache_key::<B>("fid_inception", &[&path]), || {
                let model = FidInception::<B>::load(&path, &cx.device).map_err(|e| {
                    format!(
                        "weights = {}: {}; get {FID_WEIGHTS_SOURCE}",
                        path.display(),
                        e.without_sd_source()
                    )
                })?;
                Ok(Shared {
                    model,
                    last: Mutex::new(Vec::new()),
                })
            })?;
        Ok(Self { shared, resize })
    }

    /// The features of an evaluation batch's samples (or, with `base`, of its base samples),
    /// computed once for all the run's Inception metrics.
    ///
    /// # Errors
    /// As [`InceptionFeatures::features`]; no base samples in the batch.
    pub fn of_batch(
        &self,
        batch: &SampleBatch<'_, B>,
        cx: &EvalContext<'_>,
        base: bool,
    ) -> Result<Arc<Vec<f32>>, String> {
        let images = if base {
            batch.base.ok_or("the evaluation passed no base samples")?
        } else {
            batch.samples
        };
        // `<run>/metrics/<name>`: the run is two levels up.
        let run = cx
            .state_dir
            .parent()
            .and_then(Path::parent)
            .unwrap_or(cx.state_dir);
        let key = format!(
            "{}|{:?}|{}|{}|{}|{}|{base}",
            run.display(),
            self.resize,
            cx.epoch,
            batch.prompt,
            batch.first,
            images.dims()[0]
        );
        let lock = || {
            self.shared
                .last
                .lock()
                .map_err(|_| "Inception features poisoned by a panic".to_string())
        };
        if let Some((_, features)) = lock()?.iter().find(|(k, _)| *k == key) {
            return Ok(features.clone());
        }
        let features = Arc::new(self.features(images)?);
        let mut last = lock()?;
        if last.len() == 2 {
            last.remove(0);
        }
        last.push((key, features.clone()));
        Ok(features)
    }

    /// The pool3 features of images `[N, 3, H, W]` in [0, 1], `N` rows of [`FEATURES`].
    ///
    /// # Errors
    /// Images that are not RGB.
    pub fn features(&self, images: &Tensor<B, 4>) -> Result<Vec<f32>, String> {
        let channels = images.dims()[1];
        if channels != 3 {
            return Err(format!(
                "Inception features need RGB images, got {channels} channels"
            ));
        }
        self.shared
            .model
            .features_with(images.clone(), self.resize)
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .map_err(|e| format!("{e:?}"))
    }
}

/// f32 feature rows as the f64 the statistics are computed in.
pub fn widen(features: &[f32]) -> Vec<f64> {
    features.iter().map(|&v| f64::from(v)).collect()
}

/// The network with `bench_models::inception::deterministic_weights` under the real
/// checkpoint's keys (fixtures/inception/keys.json), for tests without the 95 MB file.
#[cfg(test)]
pub(crate) fn deterministic<B: Backend>(device: &B::Device) -> InceptionFeatures<B> {
    let root = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/inception/keys.json"
    );
    let keys: Vec<(String, Vec<usize>)> =
        serde_json::from_str(&std::fs::read_to_string(root).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inception.safetensors");
    bench_models::inception::write_deterministic_weights(&keys, &path).unwrap();
    let cache = bench_core::NetworkCache::default();
    let cx = BuildContext::new(device.clone(), &cache);
    InceptionFeatures::load(&path, FidResize::PytorchFid, &cx).unwrap()
}
