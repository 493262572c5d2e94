//! ImageReward's networks against the ImageReward package's own BLIP code on tiny random models
//! (tools/fixtures/make_blip.py): BLIP's ViT on the shared vision tower, and the BERT encoder
//! cross-attending to its tokens, both read from one torch pickle as ImageReward.pt is laid out.

use burn::backend::Flex;

use bench_models::bert::{BertConfig, BertModel};
use bench_models::blip::{load_vision, BlipVisionConfig};

use crate::common::{compare, fixture, ids_and_padding, input};

const IO: &str = "blip/io.safetensors";

#[test]
fn blip_vit_and_cross_attending_bert_equal_imagerewards_code() {
    let device = Default::default();
    let file = fixture("blip/image_reward_tiny.pt");
    let vit = BlipVisionConfig {
        image_size: 30,
        patch_size: 6,
        width: 32,
        layers: 2,
        heads: 4,
        mlp_width: 128,
    };
    let tower = load_vision::<Flex>(&vit, &file, "blip.visual_encoder.", &device).unwrap();
    let tokens = tower.tokens(input(IO, "pixels"));
    let (err, scale) = compare(tokens.clone(), IO, "image_tokens");
    assert!(
        err <= 1e-4 * scale.max(1.0),
        "image tokens: {err} (scale {scale})"
    );

    let config = BertConfig {
        vocab_size: 50,
        hidden_size: 24,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 37,
        max_position_embeddings: 40,
        add_cross_attention: true,
        encoder_width: Some(32),
        ..BertConfig::default()
    };
    let (bert, loaded) =
        BertModel::<Flex>::load(config, &file, Some("blip.text_encoder."), &device).unwrap();
    assert_eq!(loaded.type_vocab_size, 0, "BLIP's BERT has no token types");
    let (ids, padding) = ids_and_padding::<Flex>(IO);
    let hidden = bert.forward_with_context(ids, padding, Some(tokens));
    let (err, scale) = compare(hidden, IO, "last_hidden_state");
    assert!(err <= 1e-4 * scale.max(1.0), "text: {err} (scale {scale})");
}
