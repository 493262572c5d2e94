//! DreamSim (Fu et al., 2023): a perceptual embedding from ViT features — the ∇-GFlowNet paper's
//! diversity measure. The ensemble concatenates DINO ViT-B/16's class token (after the last
//! block, before the final norm), and the projected class tokens of CLIP ViT-B/16 and OpenCLIP
//! ViT-B/16 (LAION-400M), 768 + 512 + 512 = 1792 values; a LoRA finetuned on NIGHTS sits on every
//! block's `qkv` and is merged into the weights here at load (`W += (α/r)·B·A`). The embedding is
//! mean-centred and L2-normalised, and the distance of two images is `1 − cos`.
//!
//! The files are those the `dreamsim` package downloads into its cache folder
//! (`dreamsim(cache_dir=...)`): the DINO backbone as torch.hub saves it
//! (`checkpoints/dino_vitbase16_pretrain.pth`), CLIP and OpenCLIP rebuilt as DINO ViTs
//! (`clip_vitb16_pretrain.pth.tar`: `pos_drop` is CLIP's `ln_pre`, `proj` the projection) and
//! peft's adapter (`ensemble_lora/`). All three branches are the shared CLIP vision tower in
//! timm's key layout (as BLIP's ViT): patch convolution with bias, fused `qkv`; DINO without a
//! norm before the blocks, LN eps 1e-6, exact GELU; CLIP with `ln_pre`, LN eps 1e-5 and QuickGELU;
//! OpenCLIP likewise with exact GELU. Sizes are read from the files (the head width is ViT's 64).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use serde::Deserialize;

use crate::blip::vision_keys;
use crate::clip::{
    normalise, ClipActivation, ClipVisionConfig, ClipVisionModel, CLIP_MEAN, CLIP_STD,
};
use crate::weights::{load_mapped, read_json, read_tensors, FileKey, Header};

/// Where the real files come from.
pub const DREAMSIM_SOURCE: &str = "the `dreamsim` package's cache folder: `pip install dreamsim`, \
     then `python -c \"from dreamsim import dreamsim; dreamsim(pretrained=True, device='cpu', \
     cache_dir='models')\"` downloads the LoRA checkpoints (github.com/ssundaram21/dreamsim \
     releases) and the DINO backbone (torch.hub, facebookresearch/dino) into `models/`";

/// ImageNet's per-channel mean and std (DINO's input normalisation).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The input side of every DreamSim model.
pub const IMAGE_SIZE: usize = 224;

/// Which DreamSim model (`dreamsim_type`): the ensemble, or one of the single-branch models.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub enum DreamSimVariant {
    /// DINO ViT-B/16 + CLIP ViT-B/16 + OpenCLIP ViT-B/16 (1792-d; the default and the papers').
    #[default]
    Ensemble,
    /// DINO ViT-B/16's class token alone (768-d).
    DinoVitb16,
    /// CLIP ViT-B/32's projected class token (512-d).
    ClipVitb32,
    /// OpenCLIP ViT-B/32's projected class token (512-d).
    OpenClipVitb32,
}

/// How a branch reads its ViT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BranchKind {
    Dino,
    Clip,
    OpenClip,
}

impl BranchKind {
    fn normalisation(self) -> ([f32; 3], [f32; 3]) {
        match self {
            Self::Dino => (IMAGENET_MEAN, IMAGENET_STD),
            Self::Clip | Self::OpenClip => (CLIP_MEAN, CLIP_STD),
        }
    }
}

impl DreamSimVariant {
    /// The variant's branches and their files, and its LoRA folder, in the cache folder.
    pub fn files(self) -> (Vec<(BranchKind, &'static str)>, &'static str) {
        const DINO: &str = "checkpoints/dino_vitbase16_pretrain.pth";
        match self {
            Self::Ensemble => (
                vec![
                    (BranchKind::Dino, DINO),
                    (BranchKind::Clip, "clip_vitb16_pretrain.pth.tar"),
                    (BranchKind::OpenClip, "open_clip_vitb16_pretrain.pth.tar"),
                ],
                "ensemble_lora",
            ),
            Self::DinoVitb16 => (vec![(BranchKind::Dino, DINO)], "dino_vitb16_single_lora"),
            Self::ClipVitb32 => (
                vec![(BranchKind::Clip, "clip_vitb32_pretrain.pth.tar")],
                "clip_vitb32_single_lora",
            ),
            Self::OpenClipVitb32 => (
                vec![(BranchKind::OpenClip, "open_clip_vitb32_pretrain.pth.tar")],
                "open_clip_vitb32_single_lora",
            ),
        }
    }

    /// Every file the variant reads, relative to the cache folder.
    pub fn required_files(self) -> Vec<String> {
        let (branches, lora) = self.files();
        branches
            .iter()
            .map(|(_, f)| f.to_string())
            .chain([
                format!("{lora}/adapter_config.json"),
                format!("{lora}/adapter_model.safetensors (or .bin)"),
            ])
            .collect()
    }
}

/// One branch: its ViT (LoRA merged) and how it is read.
pub struct Branch<B: Backend> {
    pub kind: BranchKind,
    pub vit: ClipVisionModel<B>,
}

impl<B: Backend> Branch<B> {
    /// The width of the branch's features.
    pub fn width(&self) -> usize {
        match &self.vit.visual_projection {
            Some(projection) => projection.weight.dims()[1],
            None => self.vit.vision_model.post_layernorm.gamma.dims()[0],
        }
    }

    /// The branch's features of images `[N, 3, 224, 224]` in [0, 1].
    pub fn features(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        let (mean, std) = self.kind.normalisation();
        let pixels = normalise(images, mean, std);
        match self.kind {
            BranchKind::Dino => self.vit.class_token_before_norm(pixels),
            BranchKind::Clip | BranchKind::OpenClip => self.vit.forward(pixels),
        }
    }
}

/// A DreamSim model.
pub struct DreamSim<B: Backend> {
    pub branches: Vec<Branch<B>>,
}

impl<B: Backend> DreamSim<B> {
    /// The model of `variant` from the dreamsim package's cache folder, LoRA merged.
    ///
    /// # Errors
    /// Missing files (all named, with where to get them), tensors missing or mis-shaped, a LoRA
    /// that targets a module or uses a variant (DoRA, trained biases) this loader does not merge.
    pub fn load(
        folder: &Path,
        variant: DreamSimVariant,
        device: &B::Device,
    ) -> Result<Self, String> {
        let (files, lora) = variant.files();
        let missing: Vec<String> = files
            .iter()
            .map(|(_, f)| folder.join(f))
            .chain([folder.join(lora).join("adapter_config.json")])
            .filter(|p| !p.is_file())
            .map(|p| format!("`{}`", p.display()))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "DreamSim ({variant:?}) files not found: {}; get {DREAMSIM_SOURCE}",
                missing.join(", ")
            ));
        }
        let mut branches = files
            .iter()
            .map(|&(kind, file)| load_branch(kind, &folder.join(file), device))
            .collect::<Result<Vec<_>, _>>()?;
        merge_lora(&mut branches, &folder.join(lora), device)?;
        Ok(Self { branches })
    }

    /// The embedding of images `[N, 3, 224, 224]` in [0, 1]: the branches' features side by
    /// side, mean-centred and L2-normalised per image (`normalize_embeds=True`).
    pub fn embed(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        let parts: Vec<Tensor<B, 2>> = self
            .branches
            .iter()
            .map(|b| b.features(images.clone()))
            .collect();
        let e = Tensor::cat(parts, 1);
        let centred = e.clone() - e.mean_dim(1);
        // Clamped as torch's `F.normalize`: an embedding with no spread stays zero, not NaN.
        let norm = centred
            .clone()
            .powf_scalar(2.0)
            .sum_dim(1)
            .clamp_min(1e-24)
            .sqrt();
        centred / norm
    }
}

/// The shape of `key` in `header`, or a layout error naming it.
fn shape_of<'a>(header: &'a Header, key: &str, path: &Path) -> Result<&'a [usize], String> {
    header.get(key).map(|t| t.shape.as_slice()).ok_or_else(|| {
        format!(
            "`{}`: no `{key}`: not a DINO-layout ViT (cls_token, pos_embed, \
             patch_embed.proj.weight, blocks.N.*) as DreamSim's files hold",
            path.display()
        )
    })
}

/// Dimension `i` of `key`'s shape, or a layout error naming the tensor.
fn dim_of(header: &Header, key: &str, i: usize, path: &Path) -> Result<usize, String> {
    let shape = shape_of(header, key, path)?;
    shape.get(i).copied().ok_or_else(|| {
        format!(
            "`{}`: `{key}` has shape {shape:?}, not a ViT weight's",
            path.display()
        )
    })
}

/// The tower's sizes from the file: width from the class token, patch from the patch
/// convolution, side from the position table, depth from the blocks, heads of width 64.
pub fn branch_config(
    kind: BranchKind,
    header: &Header,
    path: &Path,
) -> Result<ClipVisionConfig, String> {
    let width = *shape_of(header, "cls_token", path)?.last().unwrap_or(&0);
    let patch = shape_of(header, "patch_embed.proj.weight", path)?
        .get(2)
        .copied()
        .unwrap_or(0);
    let tokens = shape_of(header, "pos_embed", path)?
        .get(1)
        .copied()
        .unwrap_or(0);
    let mlp = dim_of(header, "blocks.0.mlp.fc1.weight", 0, path)?;
    let grid = (tokens.saturating_sub(1) as f64).sqrt().round() as usize;
    let layers = header
        .keys()
        .filter_map(|k| {
            k.strip_prefix("blocks.")?
                .split('.')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .max()
        .map_or(0, |m| m + 1);
    if width == 0 || width % 64 != 0 || patch == 0 || grid * grid + 1 != tokens {
        return Err(format!(
            "`{}`: a ViT of width {width} (not a multiple of the head width 64), patch {patch} \
             and {tokens} positions (not 1 + a square) is not one of DreamSim's",
            path.display()
        ));
    }
    let projection_dim = match kind {
        BranchKind::Dino => width,
        BranchKind::Clip | BranchKind::OpenClip => dim_of(header, "proj", 1, path)?,
    };
    Ok(ClipVisionConfig {
        hidden_size: width,
        intermediate_size: mlp,
        projection_dim,
        num_hidden_layers: layers,
        num_attention_heads: width / 64,
        num_channels: 3,
        image_size: grid * patch,
        patch_size: patch,
        hidden_act: match kind {
            BranchKind::Clip => ClipActivation::QuickGelu,
            BranchKind::Dino | BranchKind::OpenClip => ClipActivation::Gelu,
        },
        layer_norm_eps: if kind == BranchKind::Dino { 1e-6 } else { 1e-5 },
        patch_bias: true,
        pre_norm: kind != BranchKind::Dino,
        projection: kind != BranchKind::Dino,
    })
}

/// Where a tower tensor is in a DINO-layout file: timm's keys (as BLIP's), CLIP's `ln_pre` in
/// `pos_drop`, the projection `[width, embed]` in `proj`.
pub fn dino_layout_key(key: &str) -> FileKey {
    if let Some(rest) = key.strip_prefix("vision_model.pre_layrnorm.") {
        FileKey::plain(format!("pos_drop.{rest}"))
    } else if key == "visual_projection.weight" {
        FileKey::transposed("proj")
    } else {
        vision_keys("")(key)
    }
}

fn load_branch<B: Backend>(
    kind: BranchKind,
    path: &Path,
    device: &B::Device,
) -> Result<Branch<B>, String> {
    let (header, _) = read_tensors(path).map_err(|e| e.without_sd_source())?;
    let config = branch_config(kind, &header, path)?;
    let vit = load_mapped(config.init(device), path, &dino_layout_key)
        .map_err(|e| e.without_sd_source())?;
    Ok(Branch { kind, vit })
}

/// The fields of peft's `adapter_config.json` that merging depends on.
#[derive(Debug, Deserialize)]
struct AdapterConfig {
    r: usize,
    lora_alpha: f64,
    #[serde(default)]
    use_rslora: bool,
    #[serde(default)]
    use_dora: bool,
    #[serde(default)]
    fan_in_fan_out: bool,
    #[serde(default)]
    bias: Option<String>,
    #[serde(default)]
    alpha_pattern: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    rank_pattern: BTreeMap<String, serde_json::Value>,
}

/// The adapter's weights file: safetensors (peft ≥ 0.7's default) or a pickle.
fn adapter_file(dir: &Path) -> Result<PathBuf, String> {
    let candidates = [
        dir.join("adapter_model.safetensors"),
        dir.join("adapter_model.bin"),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            format!(
                "no LoRA weights: expected `{}` or `{}`; get {DREAMSIM_SOURCE}",
                candidates[0].display(),
                candidates[1].display()
            )
        })
}

/// A LoRA key's branch, module (`blocks.3.attn.qkv`) and side (`A` or `B`):
/// `base_model.model.extractor_list.{i}.model.{module}.lora_{A|B}[.default].weight`.
pub fn parse_lora_key(key: &str) -> Option<(usize, String, char)> {
    let rest = key.strip_prefix("base_model.model.extractor_list.")?;
    let (branch, rest) = rest.split_once('.')?;
    let rest = rest.strip_prefix("model.")?;
    let rest = rest.strip_suffix(".weight")?;
    let rest = rest.strip_suffix(".default").unwrap_or(rest);
    let (module, side) = rest.rsplit_once(".lora_")?;
    let side = match side {
        "A" => 'A',
        "B" => 'B',
        _ => return None,
    };
    Some((branch.parse().ok()?, module.to_string(), side))
}

/// `linear.weight += delta` for a PyTorch-layout `delta` `[out, in]` (burn keeps `[in, out]`).
fn add_to<B: Backend>(linear: &mut Linear<B>, delta: Tensor<B, 2>) {
    let weight = linear.weight.clone();
    linear.weight = Param::from_tensor(weight.val() + delta.transpose());
}

/// Merges the adapter in `dir` into the branches: `W += s·B·A` with `s = α/r` (`α/√r` under
/// rsLoRA), for every `lora_A`/`lora_B` pair of the file.
fn merge_lora<B: Backend>(
    branches: &mut [Branch<B>],
    dir: &Path,
    device: &B::Device,
) -> Result<(), String> {
    let config_path = dir.join("adapter_config.json");
    let config: AdapterConfig = read_json(&config_path).map_err(|e| e.without_sd_source())?;
    let refuse = |what: &str| {
        Err(format!(
            "`{}`: {what} is not supported (DreamSim's adapters are plain LoRA)",
            config_path.display()
        ))
    };
    if config.use_dora {
        return refuse("DoRA (`use_dora: true`)");
    }
    if config.fan_in_fan_out {
        return refuse("`fan_in_fan_out: true`");
    }
    if config.bias.as_deref().is_some_and(|b| b != "none") {
        return refuse("a trained bias (`bias` other than \"none\")");
    }
    if !config.alpha_pattern.is_empty() || !config.rank_pattern.is_empty() {
        return refuse("per-module ranks or alphas (`rank_pattern`, `alpha_pattern`)");
    }
    let scale = if config.use_rslora {
        config.lora_alpha / (config.r as f64).sqrt()
    } else {
        config.lora_alpha / config.r as f64
    };
    let file = adapter_file(dir)?;
    let (_, snapshots) = read_tensors(&file).map_err(|e| e.without_sd_source())?;
    let mut pairs: BTreeMap<(usize, String), [Option<TensorData>; 2]> = BTreeMap::new();
    for (key, snapshot) in &snapshots {
        let (branch, module, side) = parse_lora_key(key).ok_or_else(|| {
            format!(
                "`{}`: `{key}` is not a LoRA weight of a DreamSim branch \
                 (base_model.model.extractor_list.N.model.…lora_A/B.weight)",
                file.display()
            )
        })?;
        let data = snapshot
            .to_data()
            .map_err(|e| format!("`{}`: `{key}`: {e:?}", file.display()))?
            .convert::<f32>();
        if data.shape.len() != 2 {
            return Err(format!(
                "`{}`: `{key}` has shape {:?}; a LoRA factor is a matrix",
                file.display(),
                data.shape
            ));
        }
        pairs.entry((branch, module)).or_default()[usize::from(side == 'B')] = Some(data);
    }
    for ((index, module), [a, b]) in pairs {
        let (Some(a), Some(b)) = (a, b) else {
            return Err(format!(
                "`{}`: `{module}` of branch {index} has only one of lora_A and lora_B",
                file.display()
            ));
        };
        let count = branches.len();
        let branch = branches.get_mut(index).ok_or_else(|| {
            format!(
                "`{}`: a LoRA for branch {index}, of a model with {count} branch(es)",
                file.display()
            )
        })?;
        let a = Tensor::<B, 2>::from_data(a, device);
        let b = Tensor::<B, 2>::from_data(b, device);
        let ([_, inner], [_, rank]) = (a.dims(), b.dims());
        if a.dims()[0] != rank {
            return Err(format!(
                "`{}`: `{module}` of branch {index}: lora_A is {:?}, lora_B {:?}",
                file.display(),
                a.dims(),
                b.dims()
            ));
        }
        let delta = b.matmul(a) * scale;
        merge_into(&mut branch.vit, &module, delta, inner)
            .map_err(|e| format!("`{}`: `{module}` of branch {index}: {e}", file.display()))?;
    }
    Ok(())
}

/// Adds `delta` `[out, in]` to the tower's linear `module` (timm's name: `blocks.{i}.attn.qkv`,
/// `.attn.proj`, `.mlp.fc1`, `.mlp.fc2`).
fn merge_into<B: Backend>(
    vit: &mut ClipVisionModel<B>,
    module: &str,
    delta: Tensor<B, 2>,
    inner: usize,
) -> Result<(), String> {
    let (block, name) = module
        .strip_prefix("blocks.")
        .and_then(|r| r.split_once('.'))
        .and_then(|(i, n)| Some((i.parse::<usize>().ok()?, n)))
        .ok_or("LoRA merging covers the blocks' linear layers only")?;
    let layers = &mut vit.vision_model.encoder.layers;
    let depth = layers.len();
    let layer = layers
        .get_mut(block)
        .ok_or_else(|| format!("block {block} of a ViT with {depth} blocks"))?;
    let [out, _] = delta.dims();
    let width = layer.self_attn.q_proj.weight.dims()[0];
    let expect = |linear: &Linear<B>| {
        let [i, o] = linear.weight.dims();
        if [o, i] == [out, inner] {
            Ok(())
        } else {
            Err(format!(
                "a delta of [{out}, {inner}] for a layer of [{o}, {i}]"
            ))
        }
    };
    match name {
        "attn.qkv" => {
            if out != 3 * width || inner != width {
                return Err(format!("a qkv delta of [{out}, {inner}] for width {width}"));
            }
            let part = |k: usize| delta.clone().narrow(0, k * width, width);
            add_to(&mut layer.self_attn.q_proj, part(0));
            add_to(&mut layer.self_attn.k_proj, part(1));
            add_to(&mut layer.self_attn.v_proj, part(2));
        }
        "attn.proj" => {
            expect(&layer.self_attn.out_proj)?;
            add_to(&mut layer.self_attn.out_proj, delta);
        }
        "mlp.fc1" => {
            expect(&layer.mlp.fc1)?;
            add_to(&mut layer.mlp.fc1, delta);
        }
        "mlp.fc2" => {
            expect(&layer.mlp.fc2)?;
            add_to(&mut layer.mlp.fc2, delta);
        }
        other => return Err(format!("`{other}` is not a linear layer of a ViT block")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lora_keys_parse_as_peft_saves_them() {
        assert_eq!(
            parse_lora_key(
                "base_model.model.extractor_list.2.model.blocks.11.attn.qkv.lora_B.weight"
            ),
            Some((2, "blocks.11.attn.qkv".into(), 'B'))
        );
        assert_eq!(
            parse_lora_key(
                "base_model.model.extractor_list.0.model.blocks.0.mlp.fc1.lora_A.default.weight"
            ),
            Some((0, "blocks.0.mlp.fc1".into(), 'A'))
        );
        assert_eq!(parse_lora_key("base_model.model.mlp.weight"), None);
    }
}
