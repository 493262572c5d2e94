//! CLIP's byte-level BPE tokenizer as SD v1's pipeline calls it: 77 tokens, `<|startoftext|>`
//! first, `<|endoftext|>` last, padded with `<|endoftext|>`.
//!
//! Built with the `tokenizers` crate from a diffusers `tokenizer/` folder (`vocab.json` +
//! `merges.txt`), or from the copy of CLIP's vocabulary built into this crate
//! ([`ClipTokenizer::sd_v1`]) for checkpoints that hold none. The text cleanup follows
//! transformers' slow `CLIPTokenizer` (what diffusers loads for SD) when `ftfy` is absent:
//! control characters dropped, every whitespace a space, CJK characters split apart, NFC, lower
//! case. The fast tokenizer differs from it on CJK text and zero-width characters; the slow one
//! is what SD checkpoints were used with.

use std::path::Path;

use burn::tensor::{backend::Backend, Int, Tensor, TensorData};
use tokenizers::models::bpe::{Vocab, BPE};
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
        let mut texts = Vec::with_capacity(2);
        for (what, path) in [
            ("tokenizer vocabulary", vocab),
            ("tokenizer merges", merges),
        ] {
            let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => LoadError::MissingFile {
                    what: what.into(),
                    paths: vec![path.to_path_buf()],
                },
                _ => LoadError::Read {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                },
            })?;
            texts.push(text);
        }
        Self::from_texts(&texts[0], &texts[1], vocab.parent().unwrap_or(vocab))
    }

    /// SD v1's tokenizer, built into this crate: the BPE of `openai/clip-vit-large-patch14`
    /// (CLIP's 49408-token vocabulary and its merges), which every SD v1.x checkpoint was trained
    /// with and which diffusers' `from_single_file` fetches for one. For checkpoints that hold no
    /// tokenizer (single files).
    pub fn sd_v1() -> Self {
        let unzip = |gz: &[u8]| {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(gz), &mut text)
                .expect("the built-in CLIP vocabulary is valid gzipped UTF-8");
            text
        };
        let vocab = unzip(include_bytes!("../../assets/clip/vocab.json.gz"));
        let merges = unzip(include_bytes!("../../assets/clip/merges.txt.gz"));
        Self::from_texts(&vocab, &merges, Path::new("<built-in CLIP tokenizer>"))
            .expect("the built-in CLIP vocabulary builds a tokenizer")
    }

    /// From the contents of `vocab.json` and `merges.txt` (read as transformers and the
    /// `tokenizers` crate read them: the merges file's `#version` line is skipped, every other
    /// line is one merge of two space-separated symbols). `source` names them in errors.
    fn from_texts(vocab: &str, merges: &str, source: &Path) -> Result<Self, LoadError> {
        let err = |e: &dyn std::fmt::Display| LoadError::Read {
            path: source.to_path_buf(),
            message: e.to_string(),
        };
        let vocab: std::collections::HashMap<String, u32> =
            serde_json::from_str(vocab).map_err(|e| err(&format!("vocab.json: {e}")))?;
        let merges = merges
            .lines()
            .filter(|l| !l.starts_with("#version"))
            .enumerate()
            .map(|(i, line)| match line.split(' ').collect::<Vec<_>>()[..] {
                [a, b] => Ok((a.to_string(), b.to_string())),
                _ => Err(err(&format!(
                    "merges.txt: merge {} is not two symbols: {line:?}",
                    i + 1
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let bpe = BPE::builder()
            .vocab_and_merges(vocab.into_iter().collect::<Vocab>(), merges)
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

    /// The number of token ids (49408 for CLIP's vocabulary).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
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
