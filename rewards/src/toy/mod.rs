//! Rewards on the 2-D toy and the exact distributions they define.

pub mod bump;
pub mod grid;
pub mod mixture_density;
pub mod target;

use burn::tensor::{backend::Backend, Tensor};

use crate::registry::RewardRegistry;

pub use bump::Bump;
pub use grid::GridDensity;
pub use mixture_density::MixtureDensity;
pub use target::{ExactTarget, TargetKind};

pub(crate) fn register<B: Backend>(registry: &mut RewardRegistry<B>) {
    registry.register(
        "bump",
        "toy2d: r(x) = −‖x − centre‖²/(2·width²), a Gaussian bump in log space",
        |p| Ok(Box::new(Bump::new(crate::registry::params(p)?)?)),
    );
    registry.register(
        "mixture",
        "toy2d: r(x) = log Σ_j π_j N(x; m_j, σ_j²), a multi-modal density",
        |p| Ok(Box::new(MixtureDensity::new(crate::registry::params(p)?)?)),
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
