//! CLIP's byte-level BPE tokenizer as SD v1's pipeline calls it: 77 tokens, `<|startoftext|>`
//! first, `<|endoftext|>` last, padded with `<|endoftext|>`.
//!
//! Built with the `tokenizers` crate from a diffusers `tokenizer/` folder (`vocab.json` +
//! `merges.txt`). The text cleanup follows transformers' slow `CLIPTokenizer` (what diffusers
//! loads for SD) when `ftfy` is absent: control characters dropped, every whitespace a space,
//! CJK characters split apart, NFC, lower case. The fast tokenizer differs from it on CJK text
//! and zero-width characters; the slow one is what SD checkpoints were used with.

use std::path::Path;

use burn::tensor::{backend::Backend, Int, Tensor, TensorData};
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::{BertNormalizer, Lowercase, Sequence as NormalizerSequence, NFC};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizerSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{
    AddedToken, PaddingDirection, PaddingParams, PaddingStrategy, SplitDelimiterBehavior,
    Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

use crate::weights::LoadError;

pub const BOS: &str = "<|startoftext|>";
pub const EOS: &str = "<|endoftext|>";
/// SD v1's text context: every prompt becomes exactly this many ids.
pub const CONTEXT_LENGTH: usize = 77;

/// CLIP's word pattern: contractions, runs of letters, single digits, runs of other symbols;
/// whitespace separates words and is dropped.
const WORDS: &str = r"'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

#[derive(Debug)]
pub struct ClipTokenizer {
    inner: Tokenizer,
    bos: u32,
    eos: u32,
}

impl ClipTokenizer {
    /// From a diffusers `tokenizer/` folder holding `vocab.json` and `merges.txt`.
    pub fn from_folder(folder: &Path) -> Result<Self, LoadError> {
        Self::from_files(&folder.join("vocab.json"), &folder.join("merges.txt"))
    }

    pub fn from_files(vocab: &Path, merges: &Path) -> Result<Self, LoadError> {
        for (what, path) in [
            ("tokenizer vocabulary", vocab),
            ("tokenizer merges", merges),
        ] {
            if !path.is_file() {
                return Err(LoadError::MissingFile {
                    what: what.into(),
                    paths: vec![path.to_path_buf()],
                });
            }
        }
        let err = |e: &dyn std::fmt::Display| LoadError::Read {
            path: vocab.parent().unwrap_or(vocab).to_path_buf(),
            message: e.to_string(),
        };
        let bpe = BPE::from_file(&vocab.to_string_lossy(), &merges.to_string_lossy())
            .end_of_word_suffix("</w>".into())
            .unk_token(EOS.into())
            .build()
            .map_err(|e| err(&e))?;
        let id = |token: &str| {
            bpe_vocab_id(&bpe, token)
                .ok_or_else(|| err(&format!("`{token}` is not in the vocabulary")))
        };
        let (bos, eos) = (id(BOS)?, id(EOS)?);

        let mut inner = Tokenizer::new(bpe);
        inner.with_normalizer(Some(NormalizerSequence::new(vec![
            BertNormalizer::new(true, true, Some(false), false).into(),
            NFC.into(),
            Lowercase.into(),
        ])));
        inner.with_pre_tokenizer(Some(PreTokenizerSequence::new(vec![
            Split::new(
                SplitPattern::Regex(WORDS.into()),
                SplitDelimiterBehavior::Removed,
                true,
            )
            .map_err(|e| err(&e))?
            .into(),
            ByteLevel::new(false, false, false).into(),
        ])));
        inner.with_post_processor(Some(
            TemplateProcessing::builder()
                .try_single(format!("{BOS} $A {EOS}"))
                .map_err(|e| err(&e))?
                .special_tokens(vec![(BOS, bos), (EOS, eos)])
                .build()
                .map_err(|e| err(&e))?,
        ));
        inner
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: CONTEXT_LENGTH,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| err(&e))?;
        inner.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::Fixed(CONTEXT_LENGTH),
            direction: PaddingDirection::Right,
            pad_to_multiple_of: None,
            pad_id: eos,
            pad_type_id: 0,
            pad_token: EOS.into(),
        }));
        // Special tokens written in a prompt become their ids, as in transformers.
        inner.add_special_tokens(&[AddedToken::from(BOS, true), AddedToken::from(EOS, true)]);
        Ok(Self { inner, bos, eos })
    }

    pub fn bos_id(&self) -> u32 {
        self.bos
    }

    pub fn eos_id(&self) -> u32 {
        self.eos
    }

    /// The [`CONTEXT_LENGTH`] ids of one prompt (truncated prompts still end with EOS).
    pub fn encode(&self, prompt: &str) -> Vec<u32> {
        let encoding = self
            .inner
            .encode(prompt, true)
            .expect("byte-level BPE encodes every string");
        encoding.get_ids().to_vec()
    }

    /// Ids of several prompts as an `[N, 77]` tensor, the text encoder's input.
    pub fn encode_batch<B: Backend>(
        &self,
        prompts: &[&str],
        device: &B::Device,
    ) -> Tensor<B, 2, Int> {
        let ids: Vec<i64> = prompts
            .iter()
            .flat_map(|p| self.encode(p).into_iter().map(i64::from))
            .collect();
        Tensor::from_data(
            TensorData::new(ids, [prompts.len(), CONTEXT_LENGTH]),
            device,
        )
    }
}

fn bpe_vocab_id(bpe: &BPE, token: &str) -> Option<u32> {
    use tokenizers::Model;
    bpe.token_to_id(token)
}
