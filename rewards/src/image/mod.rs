//! Rewards on images `[N, 3, H, W]` in [0, 1].

pub mod aesthetic;
pub mod brightness;
pub mod clip_image;
pub mod clip_score;
pub mod clip_text;
pub mod hpsv2;
pub mod imagereward;
pub mod jpeg;
pub mod pag;
pub mod preprocess;

use burn::tensor::backend::AutodiffBackend;

use bench_core::{BuildContext, NoParams, SampleKind};

use crate::file_check::FileCheck;
use crate::registry::{RewardEntry, RewardPlugin, RewardRegistry};
use crate::reward::{OnAnyBackend, Reward};

pub use aesthetic::{Aesthetic, AestheticParams, Preprocess};
pub use brightness::Brightness;
pub use clip_score::{ClipScore, ClipScoreParams};
pub use hpsv2::{Hps, HpsParams};
pub use imagereward::{ImageReward, ImageRewardParams};
pub use jpeg::{JpegGoal, JpegParams, JpegSize};
pub use pag::{PagParams, PagReward, PagScores};

impl RewardPlugin for Brightness {
    type Params = NoParams;
    const SAMPLES: SampleKind = SampleKind::Images;

    fn build<B: AutodiffBackend>(
        _params: &NoParams,
        _cx: &BuildContext<'_, B>,
    ) -> Result<Box<dyn Reward<B>>, String> {
        Ok(Box::new(OnAnyBackend(Brightness)))
    }
}

/// `aesthetic`.
pub struct AestheticReward;

impl RewardPlugin for AestheticReward {
    type Params = AestheticParams;
    const SAMPLES: SampleKind = SampleKind::Images;

    fn build<B: AutodiffBackend>(
        params: &AestheticParams,
        cx: &BuildContext<'_, B>,
    ) -> Result<Box<dyn Reward<B>>, String> {
        Ok(Box::new(Aesthetic::<B>::build(params, cx)?))
    }

    fn check_files(params: &AestheticParams) -> Vec<FileCheck> {
        vec![
            clip_image::check_vision(&params.clip),
            aesthetic::check_head(&params.head),
        ]
    }
}

/// `clip_score`.
pub struct ClipScoreReward;

impl RewardPlugin for ClipScoreReward {
    type Params = ClipScoreParams;
    const SAMPLES: SampleKind = SampleKind::Images;

    fn build<B: AutodiffBackend>(
        params: &ClipScoreParams,
        cx: &BuildContext<'_, B>,
    ) -> Result<Box<dyn Reward<B>>, String> {
        Ok(Box::new(ClipScore::<B>::build(params, cx)?))
    }

    fn check_files(params: &ClipScoreParams) -> Vec<FileCheck> {
        vec![
            clip_image::check_vision(&params.clip),
            clip_text::check_text(&params.clip),
        ]
    }
}

/// `hpsv2`.
pub struct HpsReward;

impl RewardPlugin for HpsReward {
    type Params = HpsParams;
    const SAMPLES: SampleKind = SampleKind::Images;

    fn build<B: AutodiffBackend>(
        params: &HpsParams,
        cx: &BuildContext<'_, B>,
    ) -> Result<Box<dyn Reward<B>>, String> {
        Ok(Box::new(Hps::<B>::build(params, cx)?))
    }

    fn check_files(params: &HpsParams) -> Vec<FileCheck> {
        vec![hpsv2::check_checkpoint(params)]
    }
}

/// `imagereward`.
pub struct ImageRewardReward;

impl RewardPlugin for ImageRewardReward {
    type Params = ImageRewardParams;
    const SAMPLES: SampleKind = SampleKind::Images;

    fn build<B: AutodiffBackend>(
        params: &ImageRewardParams,
        cx: &BuildContext<'_, B>,
    ) -> Result<Box<dyn Reward<B>>, String> {
        Ok(Box::new(ImageReward::<B>::build(params, cx)?))
    }

    fn check_files(params: &ImageRewardParams) -> Vec<FileCheck> {
        imagereward::check_files(params)
    }
}

/// `jpeg_compressibility`.
pub struct JpegCompressibility;

/// `jpeg_incompressibility`.
pub struct JpegIncompressibility;

impl RewardPlugin for JpegCompressibility {
    type Params = JpegParams;
    const SAMPLES: SampleKind = SampleKind::Images;

    fn build<B: AutodiffBackend>(
        params: &JpegParams,
        _cx: &BuildContext<'_, B>,
    ) -> Result<Box<dyn Reward<B>>, String> {
        Ok(Box::new(OnAnyBackend(JpegSize::new(
            JpegGoal::Compressible,
            params,
        ))))
    }
}

impl RewardPlugin for JpegIncompressibility {
    type Params = JpegParams;
    const SAMPLES: SampleKind = SampleKind::Images;

    fn build<B: AutodiffBackend>(
        params: &JpegParams,
        _cx: &BuildContext<'_, B>,
    ) -> Result<Box<dyn Reward<B>>, String> {
        Ok(Box::new(OnAnyBackend(JpegSize::new(
            JpegGoal::Incompressible,
            params,
        ))))
    }
}

pub(crate) fn register<B: AutodiffBackend>(registry: &mut RewardRegistry<B>) {
    registry.register(
        "aesthetic",
        "images: LAION aesthetic predictor on CLIP ViT-L/14 embeddings (differentiable; needs \
         `clip` and `head` files)",
        RewardEntry::of::<AestheticReward>(),
    );
    registry.register(
        "clip_score",
        "images: cosine of the image's and its prompt's CLIP ViT-L/14 embeddings \
         (differentiable; needs a `clip` folder)",
        RewardEntry::of::<ClipScoreReward>(),
    );
    registry.register(
        "hpsv2",
        "images: HPSv2/v2.1 human preference score, the cosine of OpenCLIP ViT-H/14 image and \
         prompt features (differentiable; needs the `checkpoint`)",
        RewardEntry::of::<HpsReward>(),
    );
    registry.register(
        "imagereward",
        "images: ImageReward, BLIP ViT-L/16 + BERT-base reading the prompt against the image, \
         normalised as the package's score (differentiable; needs the `checkpoint`)",
        RewardEntry::of::<ImageRewardReward>(),
    );
    registry.register(
        "jpeg_compressibility",
        "images: −(JPEG size in kB) at quality 95, 4:2:0, as DDPO's code saves with Pillow \
         (not differentiable)",
        RewardEntry::of::<JpegCompressibility>(),
    );
    registry.register(
        "jpeg_incompressibility",
        "images: JPEG size in kB at quality 95, 4:2:0, as DDPO's code saves with Pillow \
         (not differentiable)",
        RewardEntry::of::<JpegIncompressibility>(),
    );
    registry.register(
        "brightness",
        "images: mean pixel value in [0, 1] (differentiable; a test reward with no weights)",
        RewardEntry::of::<Brightness>(),
    );
}
