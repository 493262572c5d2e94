//! What factories get when they build a plugin.

use burn::tensor::backend::Backend;

use crate::cache::NetworkCache;

/// The device a plugin's tensors live on and the process's [`NetworkCache`], so that a reward
/// or metric network is loaded once per process and placed where the run computes.
pub struct BuildContext<'a, B: Backend> {
    pub device: B::Device,
    pub cache: &'a NetworkCache,
}

impl<B: Backend> Clone for BuildContext<'_, B> {
    fn clone(&self) -> Self {
        Self {
            device: self.device.clone(),
            cache: self.cache,
        }
    }
}
