//! Item text → token ids, with a vocabulary trained on the catalog's own text.
//!
//! Built on the `tokenizers` crate with its `fancy-regex` backend (feature `unstable_wasm`):
//! the default Oniguruma backend does not compile for wasm32, and using the same backend
//! natively guarantees the browser splits text exactly as the trainer did.

use tokenizers::models::TrainerWrapper;
use tokenizers::models::wordlevel::{WordLevel, WordLevelTrainer};
use tokenizers::normalizers::{Lowercase, NFKC, Sequence as NormSeq};
use tokenizers::pre_tokenizers::whitespace::Whitespace;
use tokenizers::{AddedToken, Tokenizer};

use crate::{CoreError, Result};

/// Token id of padding (also "no token"). The content tower masks it out.
pub const PAD_ID: u32 = 0;
/// Token id of any word outside the vocabulary.
pub const UNK_ID: u32 = 1;
const PAD: &str = "[PAD]";
const UNK: &str = "[UNK]";

/// A word-level tokenizer for product text (titles, brands, category paths).
///
/// Word level rather than BPE: product text is short, vocabulary-heavy (brands, model
/// numbers) and the content tower mean-pools tokens, so sub-word pieces add cost without
/// adding signal at this model size.
#[derive(Clone)]
pub struct ItemTokenizer {
    inner: Tokenizer,
}

impl std::fmt::Debug for ItemTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemTokenizer").field("vocab_size", &self.vocab_size()).finish()
    }
}

impl ItemTokenizer {
    /// Train a vocabulary of at most `vocab_size` words seen at least `min_frequency` times.
    pub fn train<'a>(texts: impl Iterator<Item = &'a str> + Send, vocab_size: usize, min_frequency: u64) -> Result<Self> {
        let model = WordLevel::builder()
            .unk_token(UNK.to_string())
            .build()
            .map_err(|e| CoreError::Tokenizer(e.to_string()))?;
        let mut tokenizer = Tokenizer::new(model);
        tokenizer
            .with_normalizer(Some(NormSeq::new(vec![NFKC.into(), Lowercase.into()])))
            .map_err(|e| CoreError::Tokenizer(e.to_string()))?;
        tokenizer.with_pre_tokenizer(Some(Whitespace {}));
        let mut trainer: TrainerWrapper = WordLevelTrainer::builder()
            .vocab_size(vocab_size)
            .min_frequency(min_frequency)
            .show_progress(false)
            // Special tokens come first, so PAD = 0 and UNK = 1 by construction.
            .special_tokens(vec![AddedToken::from(PAD, true), AddedToken::from(UNK, true)])
            .build()
            .map_err(|e| CoreError::Tokenizer(e.to_string()))?
            .into();
        tokenizer
            .train(&mut trainer, texts)
            .map_err(|e| CoreError::Tokenizer(e.to_string()))?;
        let this = Self { inner: tokenizer };
        this.check_special_ids()?;
        Ok(this)
    }

    /// Load from the `tokenizer.json` of a model bundle.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let inner = Tokenizer::from_bytes(bytes).map_err(|e| CoreError::InvalidFile {
            file: "tokenizer.json".into(),
            message: e.to_string(),
        })?;
        let this = Self { inner };
        this.check_special_ids()?;
        Ok(this)
    }

    /// Serialise as `tokenizer.json` (the Hugging Face format, loadable from Python too).
    pub fn to_json(&self) -> Result<String> {
        self.inner.to_string(false).map_err(|e| CoreError::Tokenizer(e.to_string()))
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Every word of the vocabulary with its id (special tokens included). Warm starting a
    /// model over a retrained vocabulary matches token-embedding rows by these words.
    pub fn vocab(&self) -> std::collections::HashMap<String, u32> {
        self.inner.get_vocab(true)
    }

    /// Token ids of `text`, truncated to `max_tokens` (no padding).
    pub fn encode(&self, text: &str, max_tokens: usize) -> Result<Vec<u32>> {
        if text.trim().is_empty() || max_tokens == 0 {
            return Ok(Vec::new());
        }
        // `encode`, not `encode_batch`: the batch path uses rayon, which wasm32 lacks.
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| CoreError::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().iter().copied().take(max_tokens).collect())
    }

    /// The words of `ids` (for tests and debugging).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, true).map_err(|e| CoreError::Tokenizer(e.to_string()))
    }

    fn check_special_ids(&self) -> Result<()> {
        if self.inner.token_to_id(PAD) != Some(PAD_ID) || self.inner.token_to_id(UNK) != Some(UNK_ID) {
            return Err(CoreError::InvalidFile {
                file: "tokenizer.json".into(),
                message: format!("expected {PAD} = {PAD_ID} and {UNK} = {UNK_ID}"),
            });
        }
        Ok(())
    }
}
