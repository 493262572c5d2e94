//! The LAION aesthetic predictor's head (improved-aesthetic-predictor, the `.pth` DDPO, DAG,
//! ∇-GFlowNet and PAG load): a stack of linear layers with dropouts between them and *no*
//! activation, on L2-normalised CLIP ViT-L/14 image embeddings: 768→1024→128→64→16→1.
//!
//! The file holds a `torch.nn.Sequential` state dict whose linear layers sit at indices 0, 2, 4,
//! 6 and 7 (dropouts between them); the widths are read off the file, so any such stack loads.
//! Either the original `.pth` (torch's zip format) or a safetensors copy with the same keys.

use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;

use burn::module::Module;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::store::{ModuleSnapshot, TensorSnapshot};
use burn::tensor::{backend::Backend, Tensor};

use crate::linear;
use crate::weights::read_tensors;

/// Where the real head comes from, for error messages.
pub const HEAD_SOURCE: &str = "`sac+logos+ava1-l14-linearMSE.pth` from \
     https://github.com/christophschuhmann/improved-aesthetic-predictor";

#[derive(Module, Debug)]
pub struct AestheticHead<B: Backend> {
    pub layers: Vec<Linear<B>>,
}

impl<B: Backend> AestheticHead<B> {
    /// Loads a head file (`.pth` or `.safetensors`).
    ///
    /// # Errors
    /// An unreadable file, or one that is not a stack of linear layers `layers.{k}`.
    pub fn load(path: &Path, device: &B::Device) -> Result<Self, String> {
        Self::load_under(path, "", device)
    }

    /// The head whose keys start with `prefix` in a file of other tensors too (`mlp.` in
    /// ImageReward.pt, whose MLP has the same layout).
    ///
    /// # Errors
    /// As [`AestheticHead::load`].
    pub fn load_under(path: &Path, prefix: &str, device: &B::Device) -> Result<Self, String> {
        let named = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        if !path.is_file() {
            return Err(format!(
                "no aesthetic head at {}; get {HEAD_SOURCE}",
                path.display()
            ));
        }
        let (header, snapshots) = read_tensors(path).map_err(|e| e.to_string())?;
        let shapes: BTreeMap<String, Vec<usize>> = header
            .into_iter()
            .map(|(k, info)| (k, info.shape))
            .collect();
        let (indices, widths) = head_layout(&shapes, prefix).map_err(|e| named(&e))?;
        let layers = widths
            .windows(2)
            .map(|w| {
                LinearConfig::new(w[0], w[1])
                    .with_initializer(Initializer::Zeros)
                    .init(device)
            })
            .collect();
        let module = Self { layers };
        // Renumber the file's layers 0, 2, 4, 6, 7 as the module's 0, 1, 2, 3, 4.
        let snapshots = &snapshots;
        let renumbered: Vec<TensorSnapshot> = indices
            .iter()
            .enumerate()
            .flat_map(|(i, k)| {
                ["weight", "bias"].into_iter().filter_map(move |p| {
                    let s = snapshots.get(&format!("{prefix}layers.{k}.{p}"))?;
                    let data = s.clone_data_fn();
                    Some(TensorSnapshot::from_closure(
                        Rc::new(move || data()),
                        s.dtype,
                        s.shape.clone(),
                        vec!["layers".into(), i.to_string(), p.into()],
                        vec![],
                        s.tensor_id.unwrap_or_default(),
                    ))
                })
            })
            .collect();
        let mut module = module;
        let result = module.apply(
            renumbered,
            None,
            Some(Box::new(crate::weights::PytorchLayout)),
            false,
        );
        if !result.errors.is_empty() || !result.missing.is_empty() {
            return Err(named(&result));
        }
        Ok(module)
    }

    /// The input width (the CLIP embedding size it expects).
    pub fn input_width(&self) -> usize {
        self.layers[0].weight.dims()[0]
    }

    /// Scores `[N]` of embeddings `[N, D]` (normalise them first: the head was trained on unit
    /// vectors).
    pub fn forward(&self, embeds: Tensor<B, 2>) -> Tensor<B, 1> {
        let n = embeds.dims()[0];
        let out = self
            .layers
            .iter()
            .fold(embeds, |x, l| linear::forward(l, x));
        out.reshape([n])
    }
}

/// The file's layer indices (`layers.{k}` below `prefix`, in order) and the widths they chain,
/// from tensor shapes alone: `[768, 1024, 128, 64, 16, 1]` for the LAION head, whose layers sit
/// at 0, 2, 4, 6 and 7 between dropouts.
///
/// # Errors
/// No `layers.{k}.weight` below `prefix`, a weight that is not a matrix, or layers whose widths
/// do not chain.
pub fn head_layout(
    shapes: &BTreeMap<String, Vec<usize>>,
    prefix: &str,
) -> Result<(Vec<usize>, Vec<usize>), String> {
    let mut indices: Vec<usize> = shapes
        .keys()
        .filter_map(|k| {
            k.strip_prefix(prefix)?
                .strip_prefix("layers.")?
                .strip_suffix(".weight")?
                .parse()
                .ok()
        })
        .collect();
    indices.sort_unstable();
    if indices.is_empty() {
        return Err(format!(
            "no `{prefix}layers.{{k}}.weight` tensors: not an aesthetic head"
        ));
    }
    let mut widths = vec![];
    for (i, k) in indices.iter().enumerate() {
        let (out, inp) = match shapes[&format!("{prefix}layers.{k}.weight")].as_slice() {
            [o, i] => (*o, *i),
            other => return Err(format!("{prefix}layers.{k}.weight has shape {other:?}")),
        };
        if i == 0 {
            widths.push(inp);
        } else if widths[i] != inp {
            return Err(format!(
                "{prefix}layers.{k} takes {inp} inputs after a layer of {} outputs",
                widths[i]
            ));
        }
        widths.push(out);
    }
    Ok((indices, widths))
}
