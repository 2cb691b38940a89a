use burn::config::Config;
use burn::tensor::Device;

use crate::SessionRankModel;

/// One configuration family for every model size: the browser student and the server's
/// teacher differ only in these numbers.
#[derive(Config, Debug, PartialEq)]
pub struct ModelConfig {
    /// Items known to the model (id-embedding rows are `n_items + 1`; row 0 = unknown).
    /// Like `vocab_size` and `n_categories`, a property of the catalog rather than a choice:
    /// set for the catalog by the feature encoder (`sessionrank_train::pipeline::
    /// complete_config`), the one place that sizes a config; 0 until then.
    #[config(default = 0)]
    pub n_items: usize,
    /// Tokenizer vocabulary size (token 0 = padding). Set by the feature encoder.
    #[config(default = 0)]
    pub vocab_size: usize,
    /// Categories known to the model (embedding rows are `n_categories + 1`; 0 = unknown).
    /// Set by the feature encoder.
    #[config(default = 0)]
    pub n_categories: usize,
    /// Width of every vector in the model.
    #[config(default = 64)]
    pub d_model: usize,
    /// Transformer layers of the session encoder.
    #[config(default = 2)]
    pub n_layers: usize,
    #[config(default = 2)]
    pub n_heads: usize,
    /// Feed-forward width; `4 * d_model` is the usual choice.
    #[config(default = 256)]
    pub d_ff: usize,
    /// Longest session context the encoder reads (older events are dropped).
    #[config(default = 50)]
    pub max_len: usize,
    /// Tokens of item text the content tower reads.
    #[config(default = 16)]
    pub max_tokens: usize,
    /// Rows of the price embedding: `MAX_PRICE_LEVEL + 2` (`sessionrank-data`'s log2 price
    /// levels `0..=15`, stored as `level + 1`, and 0 for unknown). This crate sits below the data
    /// crate, so the number is written out; `sessionrank-core` tests that it matches.
    #[config(default = 17)]
    pub n_price_levels: usize,
    /// Longest candidate list whose upstream rank gets its own learned bias.
    #[config(default = 128)]
    pub max_candidates: usize,
    #[config(default = 0.2)]
    pub dropout: f64,
    /// Content tower on/off (ablation): off = item vectors from ids only.
    #[config(default = true)]
    pub use_content: bool,
    /// Item-id embeddings on/off: off = a pure content model (every item is "cold").
    #[config(default = true)]
    pub use_item_ids: bool,
    /// Scale of cosine logits: when > 0, session states and item vectors are L2-normalised
    /// and logits are `logit_scale * cos(h, v)` (as in NISER); 0 = plain dot products.
    /// Normalising removes the popularity bias that vector norms otherwise learn.
    /// An `Option` so that bundles written before this field existed still load (`None`).
    #[config(default = "None")]
    pub logit_scale: Option<f64>,
    /// List context on/off (ablation): a self-attention layer over the candidate list, as in
    /// PRM, so a candidate's score can depend on what else is shown.
    #[config(default = false)]
    pub list_context: bool,
}

impl ModelConfig {
    /// Build the model with freshly initialised weights on `device`.
    pub fn init(&self, device: &Device) -> SessionRankModel {
        SessionRankModel::new(self, device)
    }
}
