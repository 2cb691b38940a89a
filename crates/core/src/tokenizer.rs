//! Item text → token ids, with a vocabulary trained on the catalog's own text.
//!
//! Built on the `tokenizers` crate with its `fancy-regex` backend (feature `unstable_wasm`):
//! the default Oniguruma backend does not compile for wasm32, and using the same backend
//! natively guarantees the browser splits text exactly as the trainer did.
//!
//! The tokenizer is behind the `text` cargo feature (on by default). The browser package
//! builds without it: its regex engine alone is ~0.67 MB of gzipped wasm, more than a third
//! of the first re-rank's byte budget, and a browser bundle never needs it — the server
//! encodes item text into the vectors it ships with each candidate page. Without the feature
//! [`ItemTokenizer::without_text`] is the only tokenizer there is: it reads no words.

#[cfg(feature = "text")]
use tokenizers::models::TrainerWrapper;
#[cfg(feature = "text")]
use tokenizers::models::wordlevel::{WordLevel, WordLevelTrainer};
#[cfg(feature = "text")]
use tokenizers::normalizers::{Lowercase, NFKC, Sequence as NormSeq};
#[cfg(feature = "text")]
use tokenizers::pre_tokenizers::whitespace::Whitespace;
#[cfg(feature = "text")]
use tokenizers::{AddedToken, Tokenizer};

use crate::{CoreError, Result};

/// Token id of padding (also "no token"). The content tower masks it out.
pub const PAD_ID: u32 = 0;
/// Token id of any word outside the vocabulary.
pub const UNK_ID: u32 = 1;
const PAD: &str = "[PAD]";
#[cfg(feature = "text")]
const UNK: &str = "[UNK]";

/// Refuse the two kinds of `tokenizer.json` on which the `tokenizers` crate panics instead of
/// returning an error (found by fuzzing, `crates/fuzz` target `bundle`): a file that is not
/// JSON where a decoder is expected (its `expect("Helper")`), and a `Precompiled` normalizer
/// whose charsmap does not parse (`expect("Precompiled")`). A bundle's file is outside data;
/// sessionrank never writes a `Precompiled` normalizer.
#[cfg(feature = "text")]
fn check_json(bytes: &[u8]) -> Result<()> {
    let invalid =
        |message: String| CoreError::InvalidFile { file: "tokenizer.json".into(), message };
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("not JSON: {e}")))?;
    fn precompiled(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Object(m) => {
                m.get("type").and_then(serde_json::Value::as_str) == Some("Precompiled")
                    || m.values().any(precompiled)
            }
            serde_json::Value::Array(a) => a.iter().any(precompiled),
            _ => false,
        }
    }
    if precompiled(&v) {
        return Err(invalid("a Precompiled normalizer is not supported".into()));
    }
    Ok(())
}

/// A word-level tokenizer for product text (titles, brands, category paths).
///
/// Word level rather than BPE: product text is short, vocabulary-heavy (brands, model
/// numbers) and the content tower mean-pools tokens, so sub-word pieces add cost without
/// adding signal at this model size.
///
/// `inner` is `None` for the no-text tokenizer of browser bundles ([`Self::without_text`]).
#[derive(Clone)]
pub struct ItemTokenizer {
    #[cfg(feature = "text")]
    inner: Option<Tokenizer>,
}

impl std::fmt::Debug for ItemTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemTokenizer").field("vocab_size", &self.vocab_size()).finish()
    }
}

impl ItemTokenizer {
    #[cfg(feature = "text")]
    /// Train a vocabulary of at most `vocab_size` words seen at least `min_frequency` times.
    pub fn train<'a>(
        texts: impl Iterator<Item = &'a str> + Send,
        vocab_size: usize,
        min_frequency: u64,
    ) -> Result<Self> {
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
        tokenizer.train(&mut trainer, texts).map_err(|e| CoreError::Tokenizer(e.to_string()))?;
        let this = Self { inner: Some(tokenizer) };
        this.check_special_ids()?;
        Ok(this)
    }

    /// Load from the `tokenizer.json` of a model bundle.
    #[cfg(feature = "text")]
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        check_json(bytes)?;
        let inner = Tokenizer::from_bytes(bytes).map_err(|e| CoreError::InvalidFile {
            file: "tokenizer.json".into(),
            message: e.to_string(),
        })?;
        let this = Self { inner: Some(inner) };
        this.check_special_ids()?;
        // The model's token table has `vocab_size` rows: an id at or past it (a vocabulary
        // with gaps, which the file format allows) would index outside the table (found by
        // fuzzing: a panic in the embedding's gather).
        let n = this.vocab_size();
        if let Some(id) = this.vocab().into_values().find(|&id| id as usize >= n) {
            return Err(CoreError::InvalidFile {
                file: "tokenizer.json".into(),
                message: format!("token id {id} is outside the vocabulary of {n} words"),
            });
        }
        Ok(this)
    }

    /// Without the `text` feature no `tokenizer.json` can be read: a full bundle is refused
    /// with a message that names what to load instead.
    #[cfg(not(feature = "text"))]
    pub fn from_json(_bytes: &[u8]) -> Result<Self> {
        Err(CoreError::Tokenizer(
            "this build reads no item text (no `text` feature): load the model's browser bundle (<version>/browser/manifest.json)".into(),
        ))
    }

    /// The tokenizer of browser bundles: every text is empty to it, so the content tower
    /// reads category and price only (item text reaches the browser through the vectors the
    /// server ships with each page).
    pub fn without_text() -> Self {
        Self {
            #[cfg(feature = "text")]
            inner: None,
        }
    }

    /// Whether this tokenizer reads words at all.
    pub fn reads_text(&self) -> bool {
        #[cfg(feature = "text")]
        return self.inner.is_some();
        #[cfg(not(feature = "text"))]
        false
    }

    /// Serialise as `tokenizer.json` (the Hugging Face format, loadable from Python too).
    #[cfg(feature = "text")]
    pub fn to_json(&self) -> Result<String> {
        self.text()?.to_string(false).map_err(|e| CoreError::Tokenizer(e.to_string()))
    }

    /// Words in the vocabulary, padding and unknown included (1 for [`Self::without_text`]:
    /// padding only).
    pub fn vocab_size(&self) -> usize {
        #[cfg(feature = "text")]
        if let Some(t) = &self.inner {
            return t.get_vocab_size(true);
        }
        1
    }

    /// Every word of the vocabulary with its id (special tokens included). Warm starting a
    /// model over a retrained vocabulary matches token-embedding rows by these words.
    pub fn vocab(&self) -> std::collections::HashMap<String, u32> {
        #[cfg(feature = "text")]
        if let Some(t) = &self.inner {
            return t.get_vocab(true);
        }
        std::collections::HashMap::from([(PAD.to_string(), PAD_ID)])
    }

    /// Token ids of `text`, truncated to `max_tokens` (no padding).
    pub fn encode(&self, text: &str, max_tokens: usize) -> Result<Vec<u32>> {
        if text.trim().is_empty() || max_tokens == 0 {
            return Ok(Vec::new());
        }
        #[cfg(feature = "text")]
        if let Some(t) = &self.inner {
            // `encode`, not `encode_batch`: the batch path uses rayon, which wasm32 lacks.
            let enc = t.encode(text, false).map_err(|e| CoreError::Tokenizer(e.to_string()))?;
            return Ok(enc.get_ids().iter().copied().take(max_tokens).collect());
        }
        Ok(Vec::new())
    }

    /// The words of `ids` (for tests and debugging).
    #[cfg(feature = "text")]
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.text()?.decode(ids, true).map_err(|e| CoreError::Tokenizer(e.to_string()))
    }

    #[cfg(feature = "text")]
    fn text(&self) -> Result<&Tokenizer> {
        self.inner.as_ref().ok_or_else(|| {
            CoreError::Tokenizer("this tokenizer reads no text (browser bundle)".into())
        })
    }

    #[cfg(feature = "text")]
    fn check_special_ids(&self) -> Result<()> {
        let t = self.text()?;
        if t.token_to_id(PAD) != Some(PAD_ID) || t.token_to_id(UNK) != Some(UNK_ID) {
            return Err(CoreError::InvalidFile {
                file: "tokenizer.json".into(),
                message: format!("expected {PAD} = {PAD_ID} and {UNK} = {UNK_ID}"),
            });
        }
        Ok(())
    }
}
