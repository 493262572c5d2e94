//! What factories get when they build a plugin.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;

use crate::cache::NetworkCache;

/// The device a plugin's tensors live on, the process's [`NetworkCache`] (so that a reward or
/// metric network is loaded once per process and placed where the run computes), and the
/// folder relative file parameters are read from.
pub struct BuildContext<'a, B: Backend> {
    pub device: B::Device,
    pub cache: &'a NetworkCache,
    /// The sweep file's folder for plugins a sweep names, so that `clip: "weights/clip"`
    /// means the same wherever `bench run` is started (as the environment's `model` does);
    /// none for the command line, whose paths are the working directory's.
    pub base_dir: Option<&'a Path>,
}

impl<'a, B: Backend> BuildContext<'a, B> {
    /// A context whose relative paths are the working directory's.
    pub fn new(device: B::Device, cache: &'a NetworkCache) -> Self {
        Self {
            device,
            cache,
            base_dir: None,
        }
    }

    /// `path` as a plugin should open it: below [`BuildContext::base_dir`] when relative.
    pub fn path(&self, path: &Path) -> PathBuf {
        match self.base_dir {
            Some(base) if path.is_relative() => base.join(path),
            _ => path.to_path_buf(),
        }
    }
}

impl<B: Backend> Clone for BuildContext<'_, B> {
    fn clone(&self) -> Self {
        Self {
            device: self.device.clone(),
            cache: self.cache,
            base_dir: self.base_dir,
        }
    }
}
