//! Rewards on the 2-D toy and the exact distributions they define.

pub mod bump;
pub mod grid;
pub mod mixture_density;
pub mod target;

use burn::tensor::{
    backend::{AutodiffBackend, Backend},
    Tensor,
};

use bench_core::{BuildContext, SampleKind};

use crate::registry::{RewardEntry, RewardPlugin, RewardRegistry};
use crate::reward::{OnAnyBackend, Reward};

pub use bump::{Bump, BumpConfig};
pub use grid::GridDensity;
pub use mixture_density::{MixtureConfig, MixtureDensity};
pub use target::{ExactTarget, TargetKind, TargetSpec};

impl RewardPlugin for Bump {
    type Params = BumpConfig;
    const SAMPLES: SampleKind = SampleKind::Points2d;

    fn build<B: AutodiffBackend>(
        params: &BumpConfig,
        _cx: &BuildContext<'_, B>,
    ) -> Result<Box<dyn Reward<B>>, String> {
        Ok(Box::new(OnAnyBackend(Bump::new(params.clone())?)))
    }
}

impl RewardPlugin for MixtureDensity {
    type Params = MixtureConfig;
    const SAMPLES: SampleKind = SampleKind::Points2d;

    fn build<B: AutodiffBackend>(
        params: &MixtureConfig,
        _cx: &BuildContext<'_, B>,
    ) -> Result<Box<dyn Reward<B>>, String> {
        Ok(Box::new(OnAnyBackend(MixtureDensity::new(params.clone())?)))
    }
}

pub(crate) fn register<B: AutodiffBackend>(registry: &mut RewardRegistry<B>) {
    registry.register(
        "bump",
        "toy2d: r(x) = −‖x − centre‖²/(2·width²), a Gaussian bump in log space",
        RewardEntry::of::<Bump>(),
    );
    registry.register(
        "mixture",
        "toy2d: r(x) = log Σ_j π_j N(x; m_j, σ_j²), a multi-modal density",
        RewardEntry::of::<MixtureDensity>(),
    );
}

/// Toy images `[N, 2, 1, 1]` back to points `[N, 2]`.
pub(crate) fn points<B: Backend>(images: Tensor<B, 4>) -> Tensor<B, 2> {
    let [n, c, h, w] = images.dims();
    assert_eq!(
        c * h * w,
        2,
        "toy rewards score 2-D points shaped [N, 2, 1, 1]"
    );
    images.reshape([n, 2])
}
