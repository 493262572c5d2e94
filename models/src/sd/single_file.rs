//! SD v1.x single-file checkpoints (`v1-5-pruned-emaonly.safetensors` and the fine-tunes shared
//! the same way): the UNet, VAE and CLIP text encoder in one file under the original
//! CompVis/LDM key names, with no configs and no tokenizer.
//!
//! The key mapping is diffusers' (`convert_ldm_unet_checkpoint`, `convert_ldm_vae_checkpoint`,
//! `convert_ldm_clip_checkpoint` in diffusers 0.31's `loaders/single_file_utils.py`), written
//! here from the module's side: for each tensor a component expects (diffusers' name), the key it
//! has in the file, so that a missing or mis-shaped tensor is reported under the name the file
//! uses. Keys outside the three components (`model_ema.*`, the LDM noise-schedule buffers,
//! `position_ids`) are ignored; so are the EMA weights, as `from_single_file` does by default.
//! Some files name the text encoder `cond_stage_model.transformer.embeddings.…`, without
//! transformers 4's `text_model.` (AUTOMATIC1111 renames those keys on load): they are read as
//! they are. diffusers 0.31 does not recognise that encoder as part of the file
//! (`is_clip_model` looks for the `text_model.` key) and fails with `SingleFileComponentError`
//! ("Weights for this component appear to be missing") unless given a text encoder.
//!
//! Configs are read off the tensor shapes where the shapes tell (see [`infer_unet_config`],
//! [`infer_vae_config`], [`infer_text_config`]); what they cannot tell is SD v1's choice, as
//! diffusers takes it from SD v1.5's repository for a v1 file. The tokenizer is SD v1's CLIP BPE
//! ([`ClipTokenizer::sd_v1`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use burn::tensor::backend::Backend;

use super::unet::PerBlock;
use super::{AutoencoderKl, UNet2DConditionModel, UNetConfig, VaeConfig};
use crate::clip::{
    text_encoder_keys, ClipActivation, ClipTextConfig, ClipTextModel, ClipTokenizer,
};
use crate::weights::{check_mapped, load_mapped, FileKey, FileReport, Header, LoadError};

/// The UNet's keys in an SD v1 single file start with this.
pub const UNET_PREFIX: &str = "model.diffusion_model.";
/// The VAE's (LDM's "first stage model").
pub const VAE_PREFIX: &str = "first_stage_model.";
/// The CLIP text encoder's (transformers' model, embedded as LDM's "cond stage model").
pub const TEXT_PREFIX: &str = "cond_stage_model.transformer.";

/// SD v1's UNet attention heads (its config's `attention_head_dim: 8`, which diffusers reads
/// as a head count): the width of a head is not in any tensor shape.
pub const SD1_UNET_HEADS: usize = 8;
/// SD v1's text encoder (CLIP ViT-L/14) heads: likewise not in the shapes.
pub const SD1_TEXT_HEADS: usize = 12;
/// SD v1's GroupNorm group count in the UNet and VAE (not in the shapes).
pub const SD1_NORM_GROUPS: usize = 32;
/// SD v1's VAE latent scale, diffusers' default for a file without an LDM config
/// (`LDM_VAE_DEFAULT_SCALING_FACTOR`).
pub const SD1_SCALING_FACTOR: f64 = 0.18215;

/// The three networks' configs of a single file.
#[derive(Debug, Clone, PartialEq)]
pub struct SingleFileConfigs {
    pub text_encoder: ClipTextConfig,
    pub unet: UNetConfig,
    pub vae: VaeConfig,
}

fn layout_err(file: &Path, message: String) -> LoadError {
    LoadError::Layout {
        path: file.to_path_buf(),
        message,
    }
}

/// What a file that is not an SD v1 checkpoint holds instead, when its keys say so.
fn other_model(header: &Header) -> Option<&'static str> {
    let has = |p: &str| header.keys().any(|k| k.starts_with(p));
    if has("conditioner.embedders.") {
        Some("an SDXL checkpoint (`conditioner.embedders.*`)")
    } else if has("cond_stage_model.model.") {
        Some("an SD 2.x checkpoint (OpenCLIP text encoder `cond_stage_model.model.*`)")
    } else if has("model.diffusion_model.joint_blocks.") || has("double_blocks.") {
        Some("an SD 3 / Flux checkpoint")
    } else {
        None
    }
}

/// `prefix`'s keys' next dotted component, parsed as an index (`input_blocks.3.…` → 3).
fn indices(header: &Header, prefix: &str) -> BTreeSet<usize> {
    header
        .keys()
        .filter_map(|k| k.strip_prefix(prefix))
        .filter_map(|rest| rest.split('.').next()?.parse().ok())
        .collect()
}

/// The UNet's config from the shapes in `header`:
/// - `in_channels`, `block_out_channels[0]`: `input_blocks.0.0.weight` (conv_in);
///   `out_channels`: `out.2.weight` (conv_out);
/// - `layers_per_block`: the resnets before the first downsampler (`input_blocks.{L+1}.0.op`);
///   the number of blocks from the number of `input_blocks`;
/// - `block_out_channels`: each block's first resnet's `in_layers.2` (conv1) output width;
/// - `down_block_types` / `up_block_types`: cross-attention where a block's first layer has a
///   transformer (`….1.proj_in`); `use_linear_projection` if that projection is a linear
///   weight (SD 2.x) rather than a 1×1 convolution (SD v1);
/// - `cross_attention_dim`: the mid transformer's `attn2.to_k` input width (the text width);
/// - `transformer_layers_per_block`: the mid transformer's `transformer_blocks` count;
/// - a class or addition embedding when `label_emb.*` is there (refused by [`UNetConfig::check`]).
///
/// Assumed, as SD v1 (no tensor holds them): [`SD1_UNET_HEADS`] heads (`attention_head_dim`),
/// [`SD1_NORM_GROUPS`] groups, norm eps 1e-5, `flip_sin_to_cos`, `freq_shift` 0, the
/// cross-attention mid block.
pub fn infer_unet_config(header: &Header) -> Result<UNetConfig, String> {
    let get = |k: &str| header.get(&format!("{UNET_PREFIX}{k}")).map(|i| &i.shape);
    let need = |k: &str| get(k).ok_or_else(|| format!("no `{UNET_PREFIX}{k}`"));
    let conv_in = need("input_blocks.0.0.weight")?;
    let conv_out = need("out.2.weight")?;
    let (Some(&in_channels), Some(&out_channels)) = (conv_in.get(1), conv_out.first()) else {
        return Err("conv_in / conv_out weights are not 4-d".into());
    };
    let input = indices(header, &format!("{UNET_PREFIX}input_blocks."));
    let last = *input.iter().max().expect("input_blocks.0 exists");
    let downsamplers: Vec<usize> = input
        .iter()
        .copied()
        .filter(|k| get(&format!("input_blocks.{k}.0.op.weight")).is_some())
        .collect();
    // Block i holds input_blocks 1 + i(L+1) … i(L+1) + L, its downsampler (L+1)(i+1).
    let layers = downsamplers.first().map_or(last, |k| k - 1);
    let blocks = (last + 1) / (layers + 1);
    let expected_ops: Vec<usize> = (1..blocks).map(|i| i * (layers + 1)).collect();
    if layers == 0 || blocks * (layers + 1) != last + 1 || downsamplers != expected_ops {
        return Err(format!(
            "input_blocks 0..={last} with downsamplers at {downsamplers:?} are not an SD UNet's"
        ));
    }
    let mut block_out_channels = Vec::with_capacity(blocks);
    let mut down_block_types = Vec::with_capacity(blocks);
    let mut up_block_types = Vec::with_capacity(blocks);
    let mut use_linear_projection = false;
    for i in 0..blocks {
        let k = 1 + i * (layers + 1);
        let conv1 = need(&format!("input_blocks.{k}.0.in_layers.2.weight"))?;
        block_out_channels.push(conv1[0]);
        let proj_in = get(&format!("input_blocks.{k}.1.proj_in.weight"));
        use_linear_projection |= proj_in.is_some_and(|s| s.len() == 2);
        down_block_types.push(if proj_in.is_some() {
            "CrossAttnDownBlock2D"
        } else {
            "DownBlock2D"
        });
        let up = i * (layers + 1);
        up_block_types.push(
            if get(&format!("output_blocks.{up}.1.proj_in.weight")).is_some() {
                "CrossAttnUpBlock2D"
            } else {
                "UpBlock2D"
            },
        );
    }
    let to_k = need("middle_block.1.transformer_blocks.0.attn2.to_k.weight")?;
    let cross_attention_dim = *to_k.get(1).ok_or("attn2.to_k.weight is not 2-d")?;
    let transformer_layers = indices(
        header,
        &format!("{UNET_PREFIX}middle_block.1.transformer_blocks."),
    )
    .len();
    let label = header
        .keys()
        .any(|k| k.starts_with(&format!("{UNET_PREFIX}label_emb.")));
    Ok(UNetConfig {
        in_channels,
        out_channels,
        block_out_channels,
        layers_per_block: layers,
        down_block_types: down_block_types.into_iter().map(String::from).collect(),
        up_block_types: up_block_types.into_iter().map(String::from).collect(),
        cross_attention_dim,
        attention_head_dim: PerBlock::Same(SD1_UNET_HEADS),
        num_attention_heads: None,
        norm_num_groups: SD1_NORM_GROUPS,
        norm_eps: 1e-5,
        flip_sin_to_cos: true,
        freq_shift: 0,
        use_linear_projection,
        center_input_sample: false,
        mid_block_type: Some("UNetMidBlock2DCrossAttn".into()),
        class_embed_type: label.then(|| "label_emb (class or SDXL addition embedding)".into()),
        addition_embed_type: None,
        transformer_layers_per_block: PerBlock::Same(transformer_layers),
    })
}

/// The VAE's config from the shapes in `header`:
/// - `in_channels`: `encoder.conv_in.weight`; `out_channels`: `decoder.conv_out.weight`;
/// - the number of blocks: the `encoder.down.{i}` present; `block_out_channels`: each encoder
///   block's first resnet's `conv1` output width; `layers_per_block`: `encoder.down.0`'s
///   resnets (the decoder's blocks have one more, as in diffusers);
/// - `latent_channels`: `decoder.conv_in.weight`'s input width;
/// - `use_quant_conv` / `use_post_quant_conv` / `mid_block_add_attention`: whether
///   `quant_conv`, `post_quant_conv`, `encoder.mid.attn_1` are there.
///
/// Assumed, as SD v1: [`SD1_NORM_GROUPS`] groups and `scaling_factor` [`SD1_SCALING_FACTOR`]
/// (a latent scale is not a weight).
pub fn infer_vae_config(header: &Header) -> Result<VaeConfig, String> {
    let get = |k: &str| header.get(&format!("{VAE_PREFIX}{k}")).map(|i| &i.shape);
    let need = |k: &str| get(k).ok_or_else(|| format!("no `{VAE_PREFIX}{k}`"));
    let width = |s: &Vec<usize>, i: usize| {
        s.get(i)
            .copied()
            .ok_or_else(|| format!("a convolution weight of shape {s:?}"))
    };
    let blocks = indices(header, &format!("{VAE_PREFIX}encoder.down.")).len();
    let layers = indices(header, &format!("{VAE_PREFIX}encoder.down.0.block.")).len();
    if blocks == 0 || layers == 0 {
        return Err(format!("no `{VAE_PREFIX}encoder.down.0.block.0.*`"));
    }
    let block_out_channels = (0..blocks)
        .map(|i| width(need(&format!("encoder.down.{i}.block.0.conv1.weight"))?, 0))
        .collect::<Result<Vec<_>, _>>()?;
    let has = |k: &str| get(k).is_some();
    Ok(VaeConfig {
        in_channels: width(need("encoder.conv_in.weight")?, 1)?,
        out_channels: width(need("decoder.conv_out.weight")?, 0)?,
        block_out_channels,
        layers_per_block: layers,
        latent_channels: width(need("decoder.conv_in.weight")?, 1)?,
        norm_num_groups: SD1_NORM_GROUPS,
        scaling_factor: SD1_SCALING_FACTOR,
        down_block_types: vec!["DownEncoderBlock2D".into(); blocks],
        up_block_types: vec!["UpDecoderBlock2D".into(); blocks],
        use_quant_conv: has("quant_conv.weight"),
        use_post_quant_conv: has("post_quant_conv.weight"),
        mid_block_add_attention: has("encoder.mid.attn_1.q.weight"),
    })
}

/// The text encoder's config from the shapes in `header` (keys `cond_stage_model.transformer.`
/// with or without `text_model.`):
/// - `vocab_size`, `hidden_size`: `embeddings.token_embedding.weight`;
/// - `max_position_embeddings` (the context length): `embeddings.position_embedding.weight`;
/// - `num_hidden_layers`: the `encoder.layers.{i}` present; `intermediate_size`: `fc1`'s width.
///
/// Assumed, as SD v1's CLIP ViT-L/14: [`SD1_TEXT_HEADS`] heads, QuickGELU, layer norm eps 1e-5.
pub fn infer_text_config(header: &Header) -> Result<ClipTextConfig, String> {
    let keys = text_encoder_keys(header, TEXT_PREFIX);
    let get = |k: &str| {
        header
            .get(&keys(&format!("text_model.{k}")).key)
            .map(|i| &i.shape)
    };
    let need =
        |k: &str| get(k).ok_or_else(|| format!("no `{}`", keys(&format!("text_model.{k}")).key));
    let token = need("embeddings.token_embedding.weight")?;
    let position = need("embeddings.position_embedding.weight")?;
    let fc1 = need("encoder.layers.0.mlp.fc1.weight")?;
    let (&[vocab_size, hidden_size], &[max_position_embeddings, _], &[intermediate_size, _]) =
        (token.as_slice(), position.as_slice(), fc1.as_slice())
    else {
        return Err("the text encoder's embeddings and fc1 weights are not 2-d".into());
    };
    let layers_prefix = keys("text_model.encoder.layers.").key;
    let num_hidden_layers = indices(header, &layers_prefix).len();
    if !hidden_size.is_multiple_of(SD1_TEXT_HEADS) {
        return Err(format!(
            "text width {hidden_size} is not a multiple of SD v1's {SD1_TEXT_HEADS} heads"
        ));
    }
    Ok(ClipTextConfig {
        vocab_size,
        hidden_size,
        intermediate_size,
        num_hidden_layers,
        num_attention_heads: SD1_TEXT_HEADS,
        max_position_embeddings,
        hidden_act: ClipActivation::QuickGelu,
        layer_norm_eps: 1e-5,
    })
}

/// Each component's config (refused by name if this port cannot build it), on its own, so that
/// one missing part does not hide what the others are. Errors name the component and what is
/// missing or wrong, and what the file is instead when its keys say so (SD 2.x, SDXL, …).
#[allow(clippy::type_complexity)]
fn infer_each(
    file: &Path,
    header: &Header,
) -> (
    Result<ClipTextConfig, LoadError>,
    Result<UNetConfig, LoadError>,
    Result<VaeConfig, LoadError>,
) {
    let fail = |name: &str, prefix: &str, e: String| {
        let found = header.keys().any(|k| k.starts_with(prefix));
        layout_err(
            file,
            match (found, other_model(header)) {
                (false, Some(other)) => format!("{other}, not SD v1"),
                (false, None) => format!("no {name} in this file (no `{prefix}*` keys)"),
                (true, _) => format!("the {name} (`{prefix}*`) is not SD v1's: {e}"),
            },
        )
    };
    (
        infer_text_config(header).map_err(|e| fail("text encoder", TEXT_PREFIX, e)),
        infer_unet_config(header)
            .and_then(|c| c.check().map(|()| c))
            .map_err(|e| fail("UNet", UNET_PREFIX, e)),
        infer_vae_config(header)
            .and_then(|c| c.check().map(|()| c))
            .map_err(|e| fail("VAE", VAE_PREFIX, e)),
    )
}

/// All three configs of an SD v1 single file.
///
/// # Errors
/// [`LoadError::Layout`] for the first component that is missing or not SD v1's.
pub fn infer_configs(file: &Path, header: &Header) -> Result<SingleFileConfigs, LoadError> {
    let (text_encoder, unet, vae) = infer_each(file, header);
    Ok(SingleFileConfigs {
        text_encoder: text_encoder?,
        unet: unet?,
        vae: vae?,
    })
}

/// A resnet's parameter names in the UNet: diffusers → LDM.
fn unet_resnet(rest: &str) -> String {
    let (head, tail) = rest.split_once('.').unwrap_or((rest, ""));
    let head = match head {
        "norm1" => "in_layers.0",
        "conv1" => "in_layers.2",
        "norm2" => "out_layers.0",
        "conv2" => "out_layers.3",
        "time_emb_proj" => "emb_layers.1",
        "conv_shortcut" => "skip_connection",
        other => other,
    };
    format!("{head}.{tail}")
}

/// `a.b.rest` → (`a`, `b` as an index, `rest`).
fn split_indexed(key: &str) -> Option<(&str, usize, &str)> {
    let (kind, rest) = key.split_once('.')?;
    let (index, rest) = rest.split_once('.')?;
    Some((kind, index.parse().ok()?, rest))
}

/// Where each UNet tensor (diffusers' key) is in an SD v1 single file. LDM numbers the down
/// path's modules `input_blocks.{k}`: k = 0 is conv_in, then per block its L resnets (each
/// followed by its transformer at `.1` when the block has cross-attention) and a downsampler
/// (`.0.op`); the up path's `output_blocks.{k}` with L + 1 resnets per block and the upsampler
/// after the last one (at `.2` behind a transformer, else at `.1`); the mid block
/// `middle_block.{0,1,2}` (resnet, transformer, resnet).
pub fn unet_keys(config: &UNetConfig) -> impl Fn(&str) -> FileKey {
    let l = config.layers_per_block;
    let up_attention: Vec<bool> = config
        .up_block_types
        .iter()
        .map(|t| t == "CrossAttnUpBlock2D")
        .collect();
    move |key: &str| {
        let ldm = (|| -> Option<String> {
            if let Some(rest) = key.strip_prefix("conv_in.") {
                return Some(format!("input_blocks.0.0.{rest}"));
            }
            for (ours, theirs) in [
                ("time_embedding.linear_1.", "time_embed.0."),
                ("time_embedding.linear_2.", "time_embed.2."),
                ("conv_norm_out.", "out.0."),
                ("conv_out.", "out.2."),
            ] {
                if let Some(rest) = key.strip_prefix(ours) {
                    return Some(format!("{theirs}{rest}"));
                }
            }
            if let Some(rest) = key.strip_prefix("mid_block.") {
                let (kind, j, rest) = split_indexed(rest)?;
                return Some(match kind {
                    "resnets" => format!("middle_block.{}.{}", 2 * j, unet_resnet(rest)),
                    _ => format!("middle_block.1.{rest}"),
                });
            }
            let (path, i, rest) = split_indexed(key)?;
            let (kind, j, rest) = split_indexed(rest)?;
            Some(match (path, kind) {
                ("down_blocks", "resnets") => {
                    format!(
                        "input_blocks.{}.0.{}",
                        1 + i * (l + 1) + j,
                        unet_resnet(rest)
                    )
                }
                ("down_blocks", "attentions") => {
                    format!("input_blocks.{}.1.{rest}", 1 + i * (l + 1) + j)
                }
                ("down_blocks", _) => format!(
                    "input_blocks.{}.0.op.{}",
                    (i + 1) * (l + 1),
                    rest.strip_prefix("conv.")?
                ),
                ("up_blocks", "resnets") => {
                    format!("output_blocks.{}.0.{}", i * (l + 1) + j, unet_resnet(rest))
                }
                ("up_blocks", "attentions") => {
                    format!("output_blocks.{}.1.{rest}", i * (l + 1) + j)
                }
                ("up_blocks", _) => format!(
                    "output_blocks.{}.{}.{rest}",
                    i * (l + 1) + l,
                    if up_attention[i] { 2 } else { 1 }
                ),
                _ => return None,
            })
        })()
        // A key of no known block stays as it is, under the prefix (reported missing).
        .unwrap_or_else(|| key.to_string());
        FileKey::plain(format!("{UNET_PREFIX}{ldm}"))
    }
}

/// Where each VAE tensor (diffusers' key) is in an SD v1 single file: LDM's encoder blocks are
/// `encoder.down.{i}.block.{j}` with `downsample`, the decoder's `decoder.up.{n-1-i}` (numbered
/// from the lowest resolution in diffusers, the highest in LDM) with `upsample`; the mid blocks
/// `mid.block_1`, `mid.attn_1`, `mid.block_2`; a resnet's `conv_shortcut` is `nin_shortcut`,
/// `conv_norm_out` is `norm_out`. The mid attention's `group_norm`, `to_q`, `to_k`, `to_v`,
/// `to_out.0` are `norm`, `q`, `k`, `v`, `proj_out`, whose weights LDM stores as 1×1
/// convolutions (diffusers' `conv_attn_to_linear` drops the two unit dimensions).
pub fn vae_keys(config: &VaeConfig) -> impl Fn(&str) -> FileKey {
    let n = config.block_out_channels.len();
    move |key: &str| {
        let vae_resnet = |rest: &str| rest.replacen("conv_shortcut.", "nin_shortcut.", 1);
        let (coder, rest) = key.split_once('.').unwrap_or((key, ""));
        let mut conv1x1 = false;
        let ldm = (|| -> Option<String> {
            if !matches!(coder, "encoder" | "decoder") {
                return None;
            }
            if let Some(rest) = rest.strip_prefix("conv_norm_out.") {
                return Some(format!("{coder}.norm_out.{rest}"));
            }
            if let Some(rest) = rest.strip_prefix("mid_block.") {
                let (kind, j, rest) = split_indexed(rest)?;
                if kind == "resnets" {
                    return Some(format!("{coder}.mid.block_{}.{}", j + 1, vae_resnet(rest)));
                }
                let (module, param) = rest.rsplit_once('.')?;
                let module = match module {
                    "group_norm" => "norm",
                    "to_q" => "q",
                    "to_k" => "k",
                    "to_v" => "v",
                    "to_out.0" => "proj_out",
                    _ => return None,
                };
                conv1x1 = module != "norm" && param == "weight";
                return Some(format!("{coder}.mid.attn_1.{module}.{param}"));
            }
            let Some((blocks @ ("down_blocks" | "up_blocks"), i, rest)) = split_indexed(rest)
            else {
                return None;
            };
            let (kind, j, rest) = split_indexed(rest)?;
            let (ldm_blocks, b) = match blocks {
                "down_blocks" => ("down", i),
                _ => ("up", n.checked_sub(i + 1)?),
            };
            Some(match kind {
                "resnets" => format!("{coder}.{ldm_blocks}.{b}.block.{j}.{}", vae_resnet(rest)),
                "downsamplers" => format!("{coder}.down.{b}.downsample.{rest}"),
                _ => format!("{coder}.up.{b}.upsample.{rest}"),
            })
        })()
        .unwrap_or_else(|| key.to_string());
        FileKey {
            conv1x1,
            ..FileKey::plain(format!("{VAE_PREFIX}{ldm}"))
        }
    }
}

/// One component of a single file as `bench doctor` reports it: its key namespace, its inferred
/// config in words, and its tensors against what that config expects.
#[derive(Debug)]
pub struct PartReport {
    pub prefix: &'static str,
    pub config: String,
    pub report: FileReport,
}

/// Header-only checks of the three components of a single file (text encoder, UNet, VAE), each
/// on its own (see [`infer_each`]).
pub fn check(file: &Path, header: &Header) -> [(&'static str, Result<PartReport, LoadError>); 3] {
    type B = burn::backend::Flex;
    let device = Default::default();
    let (text, unet, vae) = infer_each(file, header);
    let text = text.map(|c| PartReport {
        prefix: TEXT_PREFIX,
        config: format!(
            "CLIP, {} layers, width {}, {} tokens, context {}",
            c.num_hidden_layers, c.hidden_size, c.vocab_size, c.max_position_embeddings
        ),
        report: check_mapped(
            &c.init::<B>(&device),
            file,
            header,
            TEXT_PREFIX,
            &text_encoder_keys(header, TEXT_PREFIX),
        ),
    });
    let unet = unet.map(|c| PartReport {
        prefix: UNET_PREFIX,
        config: format!(
            "channels {:?}, layers per block {}, cross-attention width {}",
            c.block_out_channels, c.layers_per_block, c.cross_attention_dim
        ),
        report: check_mapped(
            &c.init::<B>(&device),
            file,
            header,
            UNET_PREFIX,
            &unet_keys(&c),
        ),
    });
    let vae = vae.map(|c| PartReport {
        prefix: VAE_PREFIX,
        config: format!(
            "channels {:?}, layers per block {}, latent channels {}",
            c.block_out_channels, c.layers_per_block, c.latent_channels
        ),
        report: check_mapped(
            &c.init::<B>(&device),
            file,
            header,
            VAE_PREFIX,
            &vae_keys(&c),
        ),
    });
    [("text_encoder", text), ("unet", unet), ("vae", vae)]
}

/// The keys of a single file that no component uses, grouped by their first dotted part
/// (`model_ema`: 686, `alphas_cumprod`: 1, …).
pub fn other_keys(header: &Header) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for key in header.keys() {
        if [TEXT_PREFIX, UNET_PREFIX, VAE_PREFIX]
            .iter()
            .any(|p| key.starts_with(p))
        {
            continue;
        }
        let group = key.split('.').next().unwrap_or(key).to_string();
        *out.entry(group).or_insert(0) += 1;
    }
    out
}

/// The networks of a single file, with SD v1's built-in tokenizer.
pub(crate) fn load<B: Backend>(
    file: &Path,
    header: &Header,
    device: &B::Device,
) -> Result<super::SdComponents<B>, LoadError> {
    let configs = infer_configs(file, header)?;
    let tokenizer = ClipTokenizer::sd_v1();
    if configs.text_encoder.vocab_size < tokenizer.vocab_size() {
        return Err(layout_err(
            file,
            format!(
                "the text encoder has {} token embeddings, fewer than the {} of SD v1's tokenizer \
                 (a single file holds no tokenizer, so bench uses SD v1's)",
                configs.text_encoder.vocab_size,
                tokenizer.vocab_size()
            ),
        ));
    }
    let text_keys = text_encoder_keys(header, TEXT_PREFIX);
    Ok(super::SdComponents {
        tokenizer,
        text_encoder: load_mapped::<B, ClipTextModel<B>>(
            configs.text_encoder.init(device),
            file,
            &text_keys,
        )?,
        unet: load_mapped::<B, UNet2DConditionModel<B>>(
            configs.unet.init(device),
            file,
            &unet_keys(&configs.unet),
        )?,
        vae: load_mapped::<B, AutoencoderKl<B>>(
            configs.vae.init(device),
            file,
            &vae_keys(&configs.vae),
        )?,
    })
}
