use burn::module::Module;
use burn::nn::{
    Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig,
};
use burn::tensor::{Device, Tensor};

use crate::fused::{Dense, Norm, floats};
use crate::{ItemFeatures, ModelConfig, Unfusable};

/// Turns item features into item vectors: an id embedding plus a content tower over text
/// tokens, category and price level. The content tower is what lets an item the model never
/// saw in training (id 0) still get a meaningful vector.
#[derive(Module, Debug)]
pub struct ItemEncoder {
    pub ids: Option<Embedding>,
    pub tokens: Option<Embedding>,
    pub categories: Option<Embedding>,
    pub prices: Option<Embedding>,
    pub content_proj: Option<Linear>,
    pub norm: LayerNorm,
}

impl ItemEncoder {
    pub fn new(config: &ModelConfig, device: &Device) -> Self {
        let d = config.d_model;
        // Small initial vectors: dot-product logits start near zero, so the softmax over
        // tens of thousands of items starts near uniform instead of saturated.
        let init = Initializer::Normal { mean: 0.0, std: 0.02 };
        let emb = |n: usize| EmbeddingConfig::new(n, d).with_initializer(init.clone()).init(device);
        let content = config.use_content;
        Self {
            ids: config.use_item_ids.then(|| emb(config.n_items + 1)),
            tokens: content.then(|| emb(config.vocab_size.max(1))),
            categories: content.then(|| emb(config.n_categories + 1)),
            prices: content.then(|| emb(config.n_price_levels)),
            content_proj: content.then(|| LinearConfig::new(d, d).init(device)),
            norm: LayerNormConfig::new(d).init(device),
        }
    }

    /// # Shapes
    /// * returns `[n, d_model]`
    pub fn forward(&self, features: ItemFeatures) -> Tensor<2> {
        let ItemFeatures { ids, tokens, categories, prices } = features;
        let mut v: Option<Tensor<2>> = None;
        if let Some(emb) = &self.ids {
            v = Some(embed_1d(emb, ids));
        }
        if let (Some(tok), Some(cat), Some(price), Some(proj)) =
            (&self.tokens, &self.categories, &self.prices, &self.content_proj)
        {
            // Masked mean of the text tokens; an item without text contributes zero here.
            let mask = tokens.clone().not_equal_elem(0).float(); // [n, t]
            let count = mask.clone().sum_dim(1).clamp_min(1.0); // [n, 1]
            let tok_vecs = tok.forward(tokens); // [n, t, d]
            let text =
                (tok_vecs * mask.unsqueeze_dim::<3>(2)).sum_dim(1).squeeze_dim::<2>(1) / count; // [n, d]
            let content = text + embed_1d(cat, categories) + embed_1d(price, prices);
            let content = proj.forward(content);
            v = Some(match v {
                Some(v) => v + content,
                None => content,
            });
        }
        let v = match v {
            Some(v) => v,
            // A config with neither ids nor content is rejected by `SessionRankModel::new`.
            None => unreachable!("ItemEncoder needs ids or content"),
        };
        self.norm.forward(v)
    }
}

impl ItemEncoder {
    /// [`Self::forward`] of the padding features (id 0, no text, category 0, price level 0:
    /// row 0 of every item table), as plain loops over the weights. Why: the browser needs
    /// this one row before its first re-rank, and through burn's modules it ran ~20 tensor
    /// operations whose code V8 compiles on first use — most of a cold start's engine build
    /// (~20-30 ms of ~50, profiled). Exact to `forward` (tested in `crates/model/src/tests.rs`).
    pub fn padding_vector(&self) -> Result<Vec<f32>, Unfusable> {
        let row0 = |emb: &Embedding| -> Result<Vec<f32>, Unfusable> {
            let w = emb.weight.val();
            let [_, d] = w.dims();
            let mut v = floats(w)?;
            v.truncate(d);
            Ok(v)
        };
        let mut v: Option<Vec<f32>> = match &self.ids {
            Some(emb) => Some(row0(emb)?),
            None => None,
        };
        if let (Some(_), Some(cat), Some(price), Some(proj)) =
            (&self.tokens, &self.categories, &self.prices, &self.content_proj)
        {
            // The text part is the masked mean of no tokens: zero.
            let content: Vec<f32> =
                row0(cat)?.iter().zip(row0(price)?).map(|(c, p)| c + p).collect();
            let mut projected = vec![0.0; content.len()];
            Dense::of(proj)?.apply(&content, &mut projected);
            v = Some(match v {
                Some(v) => v.iter().zip(&projected).map(|(a, b)| a + b).collect(),
                None => projected,
            });
        }
        let v = v.ok_or_else(|| Unfusable("an item encoder without ids or content".into()))?;
        let mut out = vec![0.0; v.len()];
        Norm::of(&self.norm)?.apply(&v, &mut out);
        Ok(out)
    }
}

/// Embedding lookup for a flat index vector: `[n]` → `[n, d]`.
fn embed_1d(emb: &Embedding, idx: burn::tensor::Tensor<1, burn::tensor::Int>) -> Tensor<2> {
    emb.forward(idx.unsqueeze_dim::<2>(0)).squeeze_dim::<2>(0)
}
