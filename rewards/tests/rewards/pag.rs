//! PAG's reward on the tiny random CLIP and head: the aesthetic gain, the relevance penalty
//! and their sum per prompt equal PAG's eval.py formula run with transformers/torch.

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Tensor, TensorData};

use bench_core::{BuildContext, NetworkCache};
use bench_rewards::image::{PagParams, PagReward, Preprocess};

use crate::aesthetic::{fixture, read};

type B = Autodiff<Flex>;
const IO: &str = "pag.safetensors";

fn images(name: &str) -> Tensor<Flex, 4> {
    let (v, shape) = read(IO, name);
    Tensor::from_data(TensorData::new(v, shape), &Default::default())
}

#[test]
fn reward_and_terms_equal_pags_formula() {
    let bytes = std::fs::read(fixture(IO)).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let prompts: Vec<String> =
        serde_json::from_str(&meta.metadata().as_ref().unwrap()["prompts"]).unwrap();
    let cache = NetworkCache::default();
    let cx = BuildContext::<B>::new(Default::default(), &cache);
    let params = PagParams {
        clip: fixture("clip_tiny"),
        head: fixture("aesthetic_head_tiny.pth"),
        preprocess: Preprocess::Processor,
        ..PagParams::default()
    };
    let reward = PagReward::<Flex>::build(&params, &cx).unwrap();
    let scores = reward
        .score(images("adapted"), images("plain"), &prompts)
        .unwrap();
    for (got, name) in [
        (&scores.aesthetic_gain, "aesthetic_gain"),
        (&scores.relevance, "relevance"),
        (&scores.reward, "reward"),
    ] {
        let (want, _) = read(IO, name);
        assert_eq!(got.len(), want.len(), "{name}");
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-4, "{name}: {g} vs {w}");
        }
    }
    // A batch that is not k images per prompt is an error, not a panic.
    let err = reward
        .score(
            images("adapted"),
            images("plain"),
            &vec![prompts[0].clone(); 3],
        )
        .unwrap_err();
    assert!(
        err.contains("4 adapted and 4 plain images for 3 prompts"),
        "{err}"
    );
}
