//! `per_prompt_fid` (∇-GFlowNet, §5 and Table 1): prior preservation — for each prompt, the FID
//! between the base model's images and the finetuned policy's, averaged over prompts (lower
//! keeps closer to the pretrained model).
//!
//! The base model's features are computed once per run, from the first evaluation that takes
//! part (the base sampled from the same initial noise as the policy, so at epoch 0, where the
//! policy is the base, the value is 0), and kept in `<run>/metrics/per_prompt_fid/
//! base-features.safetensors` (written whole and renamed into place), where later evaluations
//! and a resumed run read them. With 64 images against 2048 features the covariances are
//! singular; [`frechet_distance_of_features`] computes the distance from the rows themselves.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use bench_core::validate::{self, Invalid, Validate};
use bench_core::SampleKind;
use bench_models::inception::FidResize;

use crate::frechet::frechet_distance_of_features;
use crate::inception_features::{default_weights, widen, InceptionFeatures, FEATURES};
use crate::metric::{EvalContext, EvalPoint, Metric, MetricSetup, Needs, SampleBatch, Scalars};
use crate::registry::MetricPlugin;
use crate::schedule::When;

/// The base model's features in the metric's state directory.
pub const BASE_FEATURES: &str = "base-features.safetensors";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PerPromptFidParams {
    /// Images of each prompt on each side (∇-GFlowNet: 64).
    pub images_per_prompt: usize,
    /// pytorch-fid's Inception weights.
    pub weights: PathBuf,
    /// pytorch-fid's resize to 299² (default) or clean-fid's.
    pub resize: FidResize,
    pub when: When,
}

impl Default for PerPromptFidParams {
    fn default() -> Self {
        Self {
            images_per_prompt: 64,
            weights: default_weights(),
            resize: FidResize::PytorchFid,
            when: When::default(),
        }
    }
}

impl Validate for PerPromptFidParams {
    fn validate(&self) -> Result<(), Invalid> {
        validate::at_least("images_per_prompt", self.images_per_prompt, 2)
    }
}

/// The plugin (its metric, [`PerPromptFid`], lives on the evaluation's backend).
pub struct PerPromptFidMetric;

pub struct PerPromptFid<B: Backend> {
    network: InceptionFeatures<B>,
    params: PerPromptFidParams,
    prompts: Vec<String>,
    /// Each prompt's base features, once known (read from the state directory or computed).
    base: Option<Vec<Vec<f32>>>,
    /// The base features being computed at this evaluation, prompt by prompt.
    computing: Option<Vec<Vec<f32>>>,
    current: Vec<f32>,
    current_base: Vec<f32>,
    per_prompt: Vec<f64>,
}

impl MetricPlugin for PerPromptFidMetric {
    type Params = PerPromptFidParams;
    const READS: &'static [SampleKind] = &[SampleKind::Images];

    fn build<B: Backend>(
        params: &PerPromptFidParams,
        setup: &MetricSetup<'_, B>,
    ) -> Result<Box<dyn Metric<B>>, String> {
        // Every prompt's base rows are kept (f32), one prompt's policy rows, their f64 copies.
        let rows = params.images_per_prompt as f64 * (setup.env.prompts().len() + 3) as f64;
        validate::fits_in_memory(
            &format!(
                "per_prompt_fid with images_per_prompt = {}",
                params.images_per_prompt
            ),
            rows * FEATURES as f64 * 8.0,
        )?;
        Ok(Box::new(PerPromptFid {
            network: InceptionFeatures::load(&params.weights, params.resize, &setup.build)?,
            params: params.clone(),
            prompts: setup.env.prompts().to_vec(),
            base: None,
            computing: None,
            current: vec![],
            current_base: vec![],
            per_prompt: vec![],
        }))
    }
}

/// The tensor and metadata name of prompt `p`'s rows.
fn key(p: usize) -> String {
    format!("prompt.{p}")
}

/// The base features saved in `dir`, if they are there and were computed for these prompts
/// and counts (anything else is recomputed).
fn read_base(dir: &Path, prompts: &[String], rows: usize) -> Option<Vec<Vec<f32>>> {
    let bytes = std::fs::read(dir.join(BASE_FEATURES)).ok()?;
    let (_, metadata) = SafeTensors::read_metadata(&bytes).ok()?;
    let texts = metadata.metadata().as_ref()?;
    let tensors = SafeTensors::deserialize(&bytes).ok()?;
    prompts
        .iter()
        .enumerate()
        .map(|(p, text)| {
            let view = tensors.tensor(&key(p)).ok()?;
            let fits = texts.get(&key(p)) == Some(text)
                && view.dtype() == Dtype::F32
                && view.shape() == [rows, FEATURES];
            fits.then(|| {
                view.data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            })
        })
        .collect()
}

/// Writes the base features to `dir`, whole or not at all.
fn write_base(dir: &Path, prompts: &[String], features: &[Vec<f32>]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let bytes: Vec<Vec<u8>> = features
        .iter()
        .map(|rows| rows.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = bytes
        .iter()
        .enumerate()
        .map(|(p, b)| {
            TensorView::new(Dtype::F32, vec![b.len() / 4 / FEATURES, FEATURES], b)
                .map(|view| (key(p), view))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let metadata: HashMap<String, String> = prompts
        .iter()
        .enumerate()
        .map(|(p, text)| (key(p), text.clone()))
        .collect();
    let path = dir.join(BASE_FEATURES);
    let tmp = dir.join(format!(".{BASE_FEATURES}.tmp-{}", std::process::id()));
    let written = safetensors::serialize_to_file(views, Some(metadata), &tmp)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(|e| e.to_string())
        })
        .and_then(|()| std::fs::rename(&tmp, &path).map_err(|e| e.to_string()));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("writing {}: {e}", path.display())
    })
}

impl<B: Backend> Metric<B> for PerPromptFid<B> {
    fn needs(&mut self, at: &EvalPoint<'_>) -> Result<Option<Needs>, String> {
        if !self.params.when.includes(at) {
            return Ok(None);
        }
        let rows = self.params.images_per_prompt;
        if self.base.is_none() {
            self.base = read_base(at.state_dir, &self.prompts, rows);
        }
        self.computing = self.base.is_none().then(Vec::new);
        Ok(Some(Needs {
            samples_per_prompt: Some(rows),
            base: self.computing.is_some(),
        }))
    }

    fn update(
        &mut self,
        batch: &SampleBatch<'_, B>,
        cx: &mut EvalContext<'_>,
    ) -> Result<(), String> {
        let features = self.network.of_batch(batch, cx, false)?;
        self.current.extend_from_slice(&features);
        if self.computing.is_some() {
            let base = self
                .network
                .of_batch(batch, cx, true)
                .map_err(|e| format!("per_prompt_fid: {e}"))?;
            self.current_base.extend_from_slice(&base);
        }
        Ok(())
    }

    fn end_prompt(&mut self, prompt: usize, _cx: &mut EvalContext<'_>) -> Result<(), String> {
        let policy = std::mem::take(&mut self.current);
        let base = match (&mut self.computing, &self.base) {
            (Some(computing), _) => {
                computing.push(std::mem::take(&mut self.current_base));
                computing.last().expect("just pushed")
            }
            (None, Some(base)) => base
                .get(prompt)
                .ok_or_else(|| format!("per_prompt_fid: no base features of prompt {prompt}"))?,
            (None, None) => return Err("per_prompt_fid: no base features".into()),
        };
        let (np, nb) = (policy.len() / FEATURES, base.len() / FEATURES);
        let fid = frechet_distance_of_features(&widen(&policy), np, &widen(base), nb, FEATURES)
            .map_err(|e| format!("per_prompt_fid of prompt {prompt}: {e}"))?;
        self.per_prompt.push(fid);
        Ok(())
    }

    fn finish(&mut self, cx: &mut EvalContext<'_>) -> Result<Scalars, String> {
        if let Some(computed) = self.computing.take() {
            write_base(cx.state_dir, &self.prompts, &computed)?;
            self.base = Some(computed);
        }
        let fid = bench_core::stats::mean(&self.per_prompt);
        self.per_prompt.clear();
        Ok(vec![("per_prompt_fid".into(), fid)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_features_round_trip_and_are_refused_for_other_prompts_or_counts() {
        let dir = tempfile::tempdir().unwrap();
        let prompts = vec!["a cat".to_string(), "a dog".to_string()];
        let features: Vec<Vec<f32>> = (0..2)
            .map(|p| {
                (0..3 * FEATURES)
                    .map(|i| (i * (p + 1)) as f32 * 1e-3)
                    .collect()
            })
            .collect();
        write_base(dir.path(), &prompts, &features).unwrap();
        assert_eq!(read_base(dir.path(), &prompts, 3), Some(features));
        assert_eq!(read_base(dir.path(), &prompts, 4), None);
        let other = vec!["a cat".to_string(), "a bird".to_string()];
        assert_eq!(read_base(dir.path(), &other, 3), None);
        assert_eq!(read_base(&dir.path().join("none"), &prompts, 3), None);
        // No temporary file is left beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }
}
