//! CLIP's vision and text towers (with the tokenizer of a hub folder), the LAION aesthetic head and both image preprocessing paths against
//! transformers/torch on tiny random models of the real architectures
//! (tools/fixtures/make_reward_nets.py).

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Tensor, TensorData};

use bench_models::aesthetic_head::AestheticHead;
use bench_models::clip::{
    clip_normalise as normalise, ClipTextModelWithProjection, ClipTokenizer, ClipVisionModel,
};
use bench_models::resize::{pil_resize, resize, Kernel};

use crate::common::{compare, fixture, input, tensor};

type B = Flex;
const IO: &str = "reward_nets/io.safetensors";
fn score<Bk: burn::tensor::backend::Backend>(
    clip: &ClipVisionModel<Bk>,
    head: &AestheticHead<Bk>,
    pixels: Tensor<Bk, 4>,
) -> Tensor<Bk, 1> {
    let e = clip.forward(pixels);
    let norm = e.clone().powi_scalar(2).sum_dim(1).sqrt();
    head.forward(e / norm)
}

#[test]
fn vision_tower_from_either_config_layout_equals_transformers() {
    let device = Default::default();
    let resized: Tensor<B, 4> = input(IO, "differentiable.resized");
    for folder in ["clip_tiny", "clip_vision_tiny"] {
        let clip =
            ClipVisionModel::<B>::from_folder(&fixture(&format!("reward_nets/{folder}")), &device)
                .unwrap_or_else(|e| panic!("{folder}: {e}"));
        let (err, scale) = compare(
            clip.forward(normalise(resized.clone())),
            IO,
            "differentiable.embeds",
        );
        assert!(
            err <= 1e-4 * scale.max(1.0),
            "{folder}: {err} (scale {scale})"
        );
    }
}

#[test]
fn aesthetic_scores_and_their_image_gradient_equal_torch() {
    type A = Autodiff<Flex>;
    let device = Default::default();
    let clip =
        ClipVisionModel::<A>::from_folder(&fixture("reward_nets/clip_tiny"), &device).unwrap();
    for head_file in ["aesthetic_head_tiny.pth", "aesthetic_head_tiny.safetensors"] {
        let head = AestheticHead::<A>::load(&fixture(&format!("reward_nets/{head_file}")), &device)
            .unwrap();
        let images: Tensor<A, 4> = input::<A, 4>(IO, "images").require_grad();
        // The differentiable path: torch bicubic to the tower's size, no crop.
        let resized = resize(images.clone(), Kernel::TorchBicubic, [30, 30]);
        let (err, _) = compare(resized.clone().inner(), IO, "differentiable.resized");
        assert!(err <= 1e-5, "resize: {err}");
        let scores = score(&clip, &head, normalise(resized));
        let (err, _) = compare(scores.clone().inner(), IO, "differentiable.scores");
        assert!(err <= 1e-4, "{head_file}: scores {err}");
        let grads = scores.sum().backward();
        let grad = images.grad(&grads).unwrap();
        let (err, scale) = compare(grad, IO, "differentiable.grad");
        assert!(
            err <= 1e-3 * scale,
            "{head_file}: gradient {err} (scale {scale})"
        );
    }
}

/// Pillow's 8-bit bicubic, level for level, on random images (tools/fixtures/pil_resizes.py):
/// downscales by many factors, an upscale, one axis or none unchanged, a 1×1 image.
#[test]
fn pil_resize_equals_pillow_exactly() {
    let device = Default::default();
    for k in 0..8 {
        let (v, shape) = tensor("pil_resize/cases.safetensors", &format!("in.{k}"));
        let (want, out) = tensor("pil_resize/cases.safetensors", &format!("out.{k}"));
        let values: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        let images: Tensor<B, 4> = Tensor::from_data(
            TensorData::new(values, [1, shape[0], shape[1], shape[2]]),
            &device,
        );
        let got: Vec<f32> = pil_resize(images, [out[1], out[2]])
            .into_data()
            .to_vec()
            .unwrap();
        let off = got
            .iter()
            .zip(&want)
            .filter(|(g, w)| f64::from(**g) != **w)
            .count();
        assert_eq!(off, 0, "case {k}: {shape:?} → {out:?}, {off} levels differ");
    }
}

#[test]
fn processor_path_equals_clip_image_processor() {
    let device = Default::default();
    let (v, shape) = tensor(IO, "images");
    // Pillow works on the 8-bit image.
    let levels: Vec<f32> = v.iter().map(|x| (x * 255.0).round() as f32).collect();
    let images: Tensor<B, 4> = Tensor::from_data(TensorData::new(levels, shape.clone()), &device);
    let [h, w] = [shape[2], shape[3]];
    // Shortest side to 30 (40×52 → 30×39), then the centre 30×30.
    let (oh, ow) = (30, (30 * w) / h);
    let resized = pil_resize(images, [oh, ow]);
    let left = (ow - 30) / 2;
    let top = (oh - 30) / 2;
    let crop = resized.slice([0..2, 0..3, top..top + 30, left..left + 30]) / 255.0;
    let pixels = normalise(crop);
    let (err, _) = compare(pixels.clone(), IO, "processor.pixel_values");
    // Pillow's levels exactly: what is left is float rounding of the normalisation.
    assert!(err <= 1e-6, "pixel values: {err}");
    let clip =
        ClipVisionModel::<B>::from_folder(&fixture("reward_nets/clip_tiny"), &device).unwrap();
    let head =
        AestheticHead::<B>::load(&fixture("reward_nets/aesthetic_head_tiny.pth"), &device).unwrap();
    let (err, _) = compare(score(&clip, &head, pixels), IO, "processor.scores");
    assert!(err <= 1e-3, "scores: {err}");
}

#[test]
fn the_real_laion_head_loads_and_scores_as_torch() {
    // Opt-in: the real head is public data in ../shared, which the product never needs.
    let real = fixture("../../shared/data/weights/sac+logos+ava1-l14-linearMSE.pth");
    if !real.is_file() {
        eprintln!("skipped: no {}", real.display());
        return;
    }
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("reward_nets/real_head_scores.json")).unwrap(),
    )
    .unwrap();
    let head = AestheticHead::<B>::load(&real, &Default::default()).unwrap();
    let widths: Vec<usize> = head.layers.iter().map(|l| l.weight.dims()[1]).collect();
    assert_eq!(head.input_width(), 768);
    assert_eq!(widths, [1024, 128, 64, 16, 1]);
    let embeds: Vec<f32> = meta["embeds"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
        })
        .collect();
    let scores = head
        .forward(Tensor::from_data(
            TensorData::new(embeds, [3, 768]),
            &Default::default(),
        ))
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    for (got, want) in scores.iter().zip(meta["scores"].as_array().unwrap()) {
        let want = want.as_f64().unwrap() as f32;
        assert!((got - want).abs() < 1e-4, "{got} vs torch {want}");
    }
}

#[test]
fn clip_text_tower_and_tokenizer_equal_transformers() {
    const SCORE: &str = "reward_nets/clip_score.safetensors";
    let folder = fixture("reward_nets/clip_tiny");
    let prompts: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(fixture("reward_nets/clip_score_prompts.json")).unwrap(),
    )
    .unwrap();
    // The folder's own BPE, padded and truncated to 77 as CLIPTokenizer(max_length=77) does.
    let tokenizer = ClipTokenizer::from_folder(&folder).unwrap();
    let (want, _) = tensor(SCORE, "input_ids");
    let ids: Vec<u32> = prompts.iter().flat_map(|p| tokenizer.encode(p)).collect();
    let want: Vec<u32> = want.iter().map(|&v| v as u32).collect();
    assert_eq!(ids, want);
    let (model, config) =
        ClipTextModelWithProjection::<B>::from_folder(&folder, &Default::default()).unwrap();
    assert_eq!(config.vocab_size, 1000);
    let eos: Vec<usize> = ids
        .chunks(77)
        .map(|row| row.iter().position(|&t| t == tokenizer.eos_id()).unwrap())
        .collect();
    let input = Tensor::from_data(
        TensorData::new(
            ids.iter().map(|&t| i64::from(t)).collect(),
            [prompts.len(), 77],
        ),
        &Default::default(),
    );
    let (err, scale) = compare(model.forward(input, &eos), SCORE, "text_embeds");
    assert!(err <= 1e-4 * scale.max(1.0), "{err} (scale {scale})");
}

#[test]
fn open_clip_towers_from_an_hps_checkpoint_equal_open_clip() {
    use bench_models::clip::{load_open_clip, OpenClipConfig};
    const HPS: &str = "openclip/io.safetensors";
    let config = OpenClipConfig::from_file(&fixture("openclip/hps_tiny_config.json")).unwrap();
    // fp16 tensors in a torch pickle, under `state_dict`, q/k/v fused, projections transposed.
    let (vision, text) = load_open_clip::<B>(
        &config,
        &fixture("openclip/hps_tiny.pt"),
        &Default::default(),
    )
    .unwrap();
    let unit = |x: Tensor<B, 2>| x.clone() / x.powi_scalar(2).sum_dim(1).sqrt();
    let images = unit(vision.forward(input(HPS, "pixels")));
    let (err, _) = compare(images, HPS, "image_features");
    assert!(err <= 1e-4, "image features: {err}");
    // open_clip pads with 0 after the end-of-text token, bench with the token itself: the
    // ids agree up to it and, the attention being causal, so do the features.
    let tokenizer = ClipTokenizer::sd_v1();
    let prompts: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(fixture("openclip/prompts.json")).unwrap())
            .unwrap();
    let (want, _) = tensor(HPS, "input_ids");
    let mut ids = Vec::new();
    let mut eos = Vec::new();
    for (p, row) in prompts.iter().zip(want.chunks(77)) {
        let ours = tokenizer.encode(p);
        let end = ours.iter().position(|&t| t == tokenizer.eos_id()).unwrap();
        let theirs: Vec<u32> = row[..=end].iter().map(|&v| v as u32).collect();
        assert_eq!(ours[..=end], theirs[..], "{p}");
        eos.push(end);
        ids.extend(ours.into_iter().map(i64::from));
    }
    let ids = Tensor::from_data(
        TensorData::new(ids, [prompts.len(), 77]),
        &Default::default(),
    );
    let (err, _) = compare(unit(text.forward(ids, &eos)), HPS, "text_features");
    assert!(err <= 1e-4, "text features: {err}");
}
