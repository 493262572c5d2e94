//! AdamW with *global* gradient-norm clipping (burn 0.21 clips per tensor only), one per
//! trained network.

use bench_core::validate::{self, Invalid, Validate};
use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, AdamWConfig, GradientsAccumulator, GradientsParams, Optimizer};
use burn::prelude::ElementConversion;
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::{backend::AutodiffBackend, Tensor};
use serde::{Deserialize, Serialize};
use std::path::Path;

use burn_store::ModuleSnapshot;

use crate::checkpoint::{load_module, save_module};

/// Optimizer settings shared by all objectives; defaults are DDPO's and DAG's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimConfig {
    /// Learning rate (DDPO, DAG: 3e-4).
    pub lr: f64,
    /// AdamW weight decay (1e-4).
    pub weight_decay: f64,
    /// Global gradient-norm clip per network (1.0); 0 disables it.
    pub max_grad_norm: f64,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            lr: 3e-4,
            weight_decay: 1e-4,
            max_grad_norm: 1.0,
        }
    }
}

impl Validate for OptimConfig {
    fn validate(&self) -> Result<(), Invalid> {
        validate::positive("lr", self.lr)?;
        validate::non_negative("weight_decay", self.weight_decay)?;
        validate::non_negative("max_grad_norm", self.max_grad_norm)
    }
}

/// An optimizer for one network of type `M`.
pub struct Trainer<B: AutodiffBackend, M: AutodiffModule<B>> {
    config: OptimConfig,
    optim: OptimizerAdaptor<AdamW, M, B>,
}

struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: f64,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
            self.total += g.powi_scalar(2).sum().into_scalar().elem::<f64>();
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            self.grads.register(param.id, g.mul_scalar(self.factor));
        }
    }
}

impl<B: AutodiffBackend, M: AutodiffModule<B>> Trainer<B, M> {
    pub fn new(config: OptimConfig) -> Self {
        let optim = AdamWConfig::new()
            .with_weight_decay(config.weight_decay as f32)
            .init();
        Self { config, optim }
    }

    /// Takes `module`'s gradients out of `grads`, clips their global norm and steps.
    /// Returns the updated module and the norm before clipping.
    pub fn step(&mut self, module: M, grads: &mut B::Gradients) -> (M, f64) {
        let params = GradientsParams::from_module(grads, &module);
        self.step_params(module, params)
    }

    /// Takes each data-parallel shard's gradients of its copy of `module` (on the shard's
    /// device: gradients are keyed by the copy's tensors) out of its `grads`, sums them on the
    /// module's device, clips their global norm and steps.
    pub fn step_sharded<'m>(
        &mut self,
        module: M,
        shards: impl IntoIterator<Item = (&'m mut B::Gradients, &'m M)>,
    ) -> (M, f64)
    where
        M: 'm,
        B::Gradients: 'm,
    {
        let device = module.devices().into_iter().next();
        let mut parts: Vec<GradientsParams> = shards
            .into_iter()
            .map(|(grads, copy)| GradientsParams::from_module(grads, copy))
            .collect();
        if parts.len() == 1 {
            let one = parts.remove(0);
            return self.step_params(module, one);
        }
        let mut sum = GradientsAccumulator::<M>::new();
        for mut params in parts {
            if let Some(device) = &device {
                params = params.to_device(device, &module);
            }
            sum.accumulate(&module, params);
        }
        self.step_params(module, sum.grads())
    }

    fn step_params(&mut self, module: M, mut params: GradientsParams) -> (M, f64) {
        let mut norm = SquaredNorm {
            grads: &params,
            total: 0.0,
        };
        module.visit(&mut norm);
        let norm = norm.total.sqrt();
        if self.config.max_grad_norm > 0.0 && norm > self.config.max_grad_norm {
            let factor = self.config.max_grad_norm / (norm + 1e-6);
            module.visit(&mut Scale {
                grads: &mut params,
                factor,
            });
        }
        (self.optim.step(self.config.lr, module, params), norm)
    }

    /// # Errors
    /// An I/O failure.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        BinFileRecorder::<FullPrecisionSettings>::new()
            .record(self.optim.to_record(), path.to_path_buf())
            .map_err(|e| format!("saving optimizer state {}: {e}", path.display()))
    }

    /// Restores the state saved for `module` (whose parameter ids it is keyed by).
    ///
    /// # Errors
    /// A missing or unreadable file.
    pub fn load(&mut self, path: &Path, module: &M) -> Result<(), String> {
        let device = module.devices().into_iter().next().unwrap_or_default();
        let record = BinFileRecorder::<FullPrecisionSettings>::new()
            .load(path.to_path_buf(), &device)
            .map_err(|e| format!("loading optimizer state {}: {e}", path.display()))?;
        self.optim = self.optim.clone().load_record(record);
        Ok(())
    }
}

/// A trainable module with its optimizer: what every objective steps and checkpoints as a
/// pair (`<name>.safetensors` with its record, and `<name>-optim`).
pub struct Trained<B: AutodiffBackend, M: AutodiffModule<B>> {
    pub module: M,
    trainer: Trainer<B, M>,
}

impl<B: AutodiffBackend, M: AutodiffModule<B> + ModuleSnapshot<B>> Trained<B, M> {
    pub fn new(module: M, config: OptimConfig) -> Self {
        Self {
            module,
            trainer: Trainer::new(config),
        }
    }

    /// Steps on the module's gradients taken out of `grads`; returns their norm before
    /// clipping.
    pub fn step(&mut self, grads: &mut B::Gradients) -> f64 {
        let (module, norm) = self.trainer.step(self.module.clone(), grads);
        self.module = module;
        norm
    }

    /// [`Trained::step`] on the gradients of every data-parallel shard, summed: each shard's
    /// gradients with the copy of the module they were taken of ([`crate::Shard::local`]).
    pub fn step_sharded<'m>(
        &mut self,
        shards: impl IntoIterator<Item = (&'m mut B::Gradients, &'m M)>,
    ) -> f64
    where
        M: 'm,
        B::Gradients: 'm,
    {
        let (module, norm) = self.trainer.step_sharded(self.module.clone(), shards);
        self.module = module;
        norm
    }

    /// # Errors
    /// An I/O failure.
    pub fn save(&self, dir: &Path, name: &str) -> Result<(), String> {
        save_module(&self.module, &dir.join(format!("{name}.safetensors")))?;
        self.trainer.save(&dir.join(format!("{name}-optim")))
    }

    /// # Errors
    /// Missing or mismatched files, named in the message.
    pub fn load(&mut self, dir: &Path, name: &str) -> Result<(), String> {
        load_module(&mut self.module, &dir.join(format!("{name}.safetensors")))?;
        self.trainer
            .load(&dir.join(format!("{name}-optim")), &self.module)
    }
}
