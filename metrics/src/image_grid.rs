//! `image_grid`: each evaluation's first samples as one PNG (`samples/epoch-NNNNNN-grid.png`,
//! a row per prompt), capped so that its memory does not grow with the sample count.

use bench_core::validate::{self, Invalid, Validate};
use burn::tensor::{backend::Backend, Tensor};
use image::RgbImage;
use serde::{Deserialize, Serialize};

use bench_core::{write_atomic, SampleKind};

use crate::images::{grid, png_bytes, to_rgb8};
use crate::metric::{EvalContext, Metric, MetricSetup, SampleBatch, Scalars};
use crate::registry::MetricPlugin;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageGridParams {
    /// Images kept per prompt (a row).
    pub per_prompt: usize,
    /// Prompts shown (rows), the first ones.
    pub prompts: usize,
}

impl Default for ImageGridParams {
    fn default() -> Self {
        Self {
            per_prompt: 8,
            prompts: 16,
        }
    }
}

impl Validate for ImageGridParams {
    fn validate(&self) -> Result<(), Invalid> {
        validate::at_least("per_prompt", self.per_prompt, 1)?;
        validate::at_least("prompts", self.prompts, 1)
    }
}

pub struct ImageGrid {
    params: ImageGridParams,
    rows: Vec<Vec<RgbImage>>,
}

impl MetricPlugin for ImageGrid {
    type Params = ImageGridParams;
    const READS: &'static [SampleKind] = &[SampleKind::Images];

    fn build<B: Backend>(
        params: &ImageGridParams,
        _setup: &MetricSetup<'_, B>,
    ) -> Result<Box<dyn Metric<B>>, String> {
        if params.per_prompt == 0 || params.prompts == 0 {
            return Err("per_prompt and prompts must be positive".into());
        }
        Ok(Box::new(Self {
            params: params.clone(),
            rows: vec![],
        }))
    }
}

impl<B: Backend> Metric<B> for ImageGrid {
    fn update(
        &mut self,
        batch: &SampleBatch<'_, B>,
        _cx: &mut EvalContext<'_>,
    ) -> Result<(), String> {
        if batch.prompt >= self.params.prompts {
            return Ok(());
        }
        if self.rows.len() <= batch.prompt {
            self.rows.resize_with(batch.prompt + 1, Vec::new);
        }
        let row = &mut self.rows[batch.prompt];
        let room = self.params.per_prompt.saturating_sub(row.len());
        if room > 0 {
            let n = batch.samples.dims()[0].min(room);
            let kept: Tensor<B, 4> = batch.samples.clone().narrow(0, 0, n);
            row.extend(to_rgb8(kept));
        }
        Ok(())
    }

    fn finish(&mut self, cx: &mut EvalContext<'_>) -> Result<Scalars, String> {
        let rows = std::mem::take(&mut self.rows);
        let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
        if cols == 0 {
            return Ok(vec![]);
        }
        // Short rows (fewer samples than `per_prompt`) are padded so each prompt keeps its row.
        let (w, h) = rows
            .iter()
            .flatten()
            .next()
            .map_or((0, 0), RgbImage::dimensions);
        let cells: Vec<RgbImage> = rows
            .into_iter()
            .flat_map(|mut r| {
                r.resize_with(cols, || RgbImage::new(w, h));
                r
            })
            .collect();
        let path = cx
            .samples_dir
            .join(format!("epoch-{:06}-grid.png", cx.epoch));
        write_atomic(&path, &png_bytes(&grid(&cells, cols)))?;
        Ok(vec![])
    }
}
