//! Rewards on images `[N, 3, H, W]` in [0, 1].

pub mod brightness;

use burn::tensor::backend::AutodiffBackend;

use bench_core::{BuildContext, NoParams, SampleKind};

use crate::registry::{RewardEntry, RewardPlugin, RewardRegistry};
use crate::reward::{OnAnyBackend, Reward};

pub use brightness::Brightness;

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

pub(crate) fn register<B: AutodiffBackend>(registry: &mut RewardRegistry<B>) {
    registry.register(
        "brightness",
        "images: mean pixel value in [0, 1] (differentiable; a test reward with no weights)",
        RewardEntry::of::<Brightness>(),
    );
}
