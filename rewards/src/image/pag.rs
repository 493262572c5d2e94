//! PAG's reward for an adapted prompt (prompt adaptation, Promptist's reward as PAG's code
//! computes it): how much more aesthetic the adapted prompt's images are than the plain
//! prompt's, plus a relevance penalty when the adapted prompt's images drift from the plain
//! prompt, per prompt over its `k` images:
//!
//! `mean aes(adapted) − mean aes(plain) + mean min(0, slope·(max(cos, 0) − threshold))`
//!
//! with `cos` the CLIP cosine of an adapted prompt's image and the *plain* prompt. Scores only
//! (the policy is a language model; nothing differentiates through the images). Both CLIP
//! towers and the head are the `aesthetic` and `clip_score` rewards' own, shared in the
//! process's network cache.
//!
//! PAG's code preprocesses with OpenAI `clip`'s transform (torchvision's PIL bicubic resize of
//! the shortest side, centre crop), which is CLIPImageProcessor's resize; the two centre crops
//! differ by a pixel only for non-square images whose sides differ by an odd number ≥ 3.

use std::path::PathBuf;
use std::sync::Arc;

use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use bench_core::validate::{Invalid, Validate};
use bench_core::BuildContext;
use bench_models::aesthetic_head::AestheticHead;
use bench_models::Precision;

use super::aesthetic::{head_scores, load_head};
use super::clip_image::{ImageTower, Preprocess};
use super::clip_score::cosines;
use super::clip_text::TextTower;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PagParams {
    /// The CLIP folder of both terms (openai/clip-vit-large-patch14).
    pub clip: PathBuf,
    /// The LAION aesthetic head.
    pub head: PathBuf,
    pub preprocess: Preprocess,
    /// Cosines above it cost nothing (0.28).
    pub threshold: f64,
    /// The penalty per unit of cosine below the threshold (20).
    pub slope: f64,
    /// The precision the CLIP towers are held and run in: `F32` (the default), `Bf16` or `F16`
    /// (the head stays f32), as the `aesthetic` reward's `dtype`, whose towers these are. Left
    /// out of the run id when f32.
    #[serde(skip_serializing_if = "Precision::is_f32")]
    pub dtype: Precision,
}

impl Default for PagParams {
    fn default() -> Self {
        Self {
            clip: "clip-vit-large-patch14".into(),
            head: "sac+logos+ava1-l14-linearMSE.pth".into(),
            preprocess: Preprocess::Processor,
            threshold: 0.28,
            slope: 20.0,
            dtype: Precision::F32,
        }
    }
}

impl Validate for PagParams {
    fn validate(&self) -> Result<(), Invalid> {
        if !(self.threshold.is_finite() && (-1.0..=1.0).contains(&self.threshold)) {
            return Err(Invalid::new("threshold", "a cosine in [-1, 1]"));
        }
        if !(self.slope.is_finite() && self.slope >= 0.0) {
            return Err(Invalid::new("slope", "finite and ≥ 0"));
        }
        Ok(())
    }
}

/// The reward and its two terms, one value per prompt.
#[derive(Clone, Debug, PartialEq)]
pub struct PagScores {
    pub reward: Vec<f32>,
    pub aesthetic_gain: Vec<f32>,
    pub relevance: Vec<f32>,
}

/// The reward's networks on the inference backend.
pub struct PagReward<B: Backend> {
    image: ImageTower<B>,
    text: TextTower<B>,
    head: AestheticHead<B>,
    params: PagParams,
}

impl<B: Backend> PagReward<B> {
    /// Loads (or shares) the networks of `params`.
    ///
    /// # Errors
    /// As the `aesthetic` and `clip_score` rewards.
    pub fn build<A: AutodiffBackend<InnerBackend = B>>(
        params: &PagParams,
        cx: &BuildContext<'_, A>,
    ) -> Result<Self, String> {
        let clip = cx.path(&params.clip);
        let image: Arc<ImageTower<A>> = ImageTower::cached(&clip, params.dtype, cx)?;
        let text: Arc<TextTower<A>> = TextTower::cached(&clip, params.dtype, cx)?;
        let head = load_head(&cx.path(&params.head), &image, &clip, cx)?;
        Ok(Self {
            image: image.inner(),
            text: text.inner(),
            head: head.valid(),
            params: params.clone(),
        })
    }

    /// Scores `P` prompts from their adapted prompts' images and their plain prompts' images,
    /// `k` of each per prompt, prompt-major (`[P·k, 3, H, W]` in [0, 1]).
    ///
    /// # Errors
    /// Image counts that are not `P·k` for the same `k ≥ 1`.
    pub fn score(
        &self,
        adapted: Tensor<B, 4>,
        plain: Tensor<B, 4>,
        plain_prompts: &[String],
    ) -> Result<PagScores, String> {
        let p = plain_prompts.len();
        let n = adapted.dims()[0];
        if p == 0 || n == 0 || !n.is_multiple_of(p) || n != plain.dims()[0] {
            return Err(format!(
                "PAG's reward needs k ≥ 1 adapted and k plain images per prompt: got {n} \
                 adapted and {} plain images for {p} prompts",
                plain.dims()[0]
            ));
        }
        let k = n / p;
        let per_prompt = |x: Tensor<B, 1>| x.reshape([p, k]).mean_dim(1).reshape([p]);
        let aesthetic = |images: Tensor<B, 4>| {
            let pixels = self.image.pixels(images, self.params.preprocess);
            per_prompt(head_scores(&self.image, &self.head, pixels))
        };
        let gain = aesthetic(adapted.clone()) - aesthetic(plain);
        let repeated: Vec<String> = plain_prompts
            .iter()
            .flat_map(|t| std::iter::repeat_n(t.clone(), k))
            .collect();
        let pixels = self.image.pixels(adapted, self.params.preprocess);
        let cos = cosines(&self.image, &self.text, pixels, &repeated).clamp_min(0.0);
        let below = (cos - self.params.threshold).clamp_max(0.0) * self.params.slope;
        let relevance = per_prompt(below);
        let values =
            |t: Tensor<B, 1>| -> Vec<f32> { t.into_data().convert::<f32>().iter().collect() };
        Ok(PagScores {
            reward: values(gain.clone() + relevance.clone()),
            aesthetic_gain: values(gain),
            relevance: values(relevance),
        })
    }
}
