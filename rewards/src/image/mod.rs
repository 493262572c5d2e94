//! Rewards on images `[N, 3, H, W]` in [0, 1].

pub mod brightness;

use burn::tensor::backend::Backend;

use crate::registry::RewardRegistry;

pub use brightness::Brightness;

pub(crate) fn register<B: Backend>(registry: &mut RewardRegistry<B>) {
    registry.register(
        "brightness",
        "images: mean pixel value in [0, 1] (differentiable; a test reward with no weights)",
        |p| {
            crate::registry::params::<()>(p)?;
            Ok(Box::new(Brightness))
        },
    );
}
