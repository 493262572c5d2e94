//! BERT's encoder against transformers' `BertModel` on a tiny random model
//! (tools/fixtures/make_reward_nets.py): padded inputs, both key layouts.

use burn::backend::Flex;
use burn::tensor::{Bool, Tensor, TensorData};

use bench_models::bert::{BertModel, BertTokenizer};

use crate::common::{compare, fixture, ids_and_padding, tensor};

const IO: &str = "reward_nets/bert_io.safetensors";

#[test]
fn bert_encoder_equals_transformers_with_padding_and_prefixed_keys() {
    let device = Default::default();
    let (ids, padding) = ids_and_padding::<Flex>(IO);
    let (mask, shape) = tensor(IO, "attention_mask");
    let keep: Vec<f32> = mask.iter().map(|&m| m as f32).collect();
    let keep: Tensor<Flex, 3> =
        Tensor::from_data(TensorData::new(keep, [shape[0], shape[1], 1]), &device);
    for folder in ["bert_tiny", "bert_tiny_prefixed"] {
        let (model, config) =
            BertModel::<Flex>::from_folder(&fixture(&format!("reward_nets/{folder}")), &device)
                .unwrap_or_else(|e| panic!("{folder}: {e}"));
        assert_eq!(config.hidden_size, 24);
        // Every position, padded ones included, as transformers computes them.
        let hidden = model.forward(ids.clone(), padding.clone());
        let (err, scale) = compare(hidden.clone(), IO, "last_hidden_state");
        assert!(
            err <= 1e-4 * scale.max(1.0),
            "{folder}: {err} (scale {scale})"
        );
        // The mask matters: attending to the padding moves the real positions of padded rows.
        let none: Tensor<Flex, 2, Bool> = Tensor::from_data(
            TensorData::new(vec![false; shape[0] * shape[1]], shape.clone()),
            &device,
        );
        let unmasked = model.forward(ids.clone(), none);
        let moved = ((unmasked - hidden) * keep.clone())
            .abs()
            .max()
            .into_scalar();
        assert!(moved > 1e-3, "{folder}: the mask changed nothing");
    }
}

/// BLIP's tokenizer (transformers' slow `BertTokenizer` of bert-base-uncased with `[DEC]` and
/// `[ENC]` added, fixtures/image_reward/tokens.json) on accents, CJK, special tokens written
/// in the prompt, control characters, an empty prompt and one past both truncation lengths.
#[test]
fn blip_tokenizer_ids_equal_transformers() {
    let tokens: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("image_reward/tokens.json")).unwrap(),
    )
    .unwrap();
    let prompts: Vec<String> = serde_json::from_value(tokens["prompts"].clone()).unwrap();
    let tokenizer = BertTokenizer::uncased().with_added_tokens(&["[DEC]", "[ENC]"]);
    for length in [35, 512] {
        let want: Vec<Vec<u32>> =
            serde_json::from_value(tokens[length.to_string()].clone()).unwrap();
        for (prompt, want) in prompts.iter().zip(&want) {
            assert_eq!(
                &tokenizer.encode(prompt, length),
                want,
                "{prompt:?} at {length}"
            );
        }
    }
}
