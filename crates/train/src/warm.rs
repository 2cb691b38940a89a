//! Warm start: a model for a new item index that begins from a trained model's weights.
//!
//! A shop's catalog grows between retrainings and its tokenizer vocabulary and category list
//! are rebuilt from the new catalog, so the per-item and per-vocabulary tables change shape
//! and row order. Every other weight (content projection, norms, the Transformer, the list
//! scorer) has the same shape whenever the architecture is the same, and is copied as is.
//! The three tables are remapped row by row through what the rows *mean*:
//!
//! | table | row key | row 0 |
//! |---|---|---|
//! | item ids | the item id string | "unknown item" |
//! | categories | the category name | "unknown category" |
//! | text tokens | the vocabulary word | padding |
//!
//! A row whose key the old model knew is copied exactly; any other row keeps the fresh
//! initialisation of [`ModelConfig::init`] (small random vectors: a new item starts from its
//! content tower, as a cold item does at serving time).

use std::collections::HashMap;

use burn::module::{Module, Param};
use burn::nn::Embedding;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use sessionrank_core::features::FeatureEncoder;
use sessionrank_core::reranker::read_f32;
use sessionrank_data::Catalog;
use sessionrank_model::{ModelConfig, SessionRankModel};

use crate::{Result, TrainError};

/// Rows of one embedding table (row 0 not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRows {
    /// Copied from the old model.
    pub carried: usize,
    /// Freshly initialised (keys the old model did not know).
    pub new: usize,
}

/// What [`remap_model`] carried over, per table (all zero for a table the config disables).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemapReport {
    pub items: TableRows,
    pub categories: TableRows,
    pub tokens: TableRows,
}

/// Whether weights of a model with config `a` fit a model with config `b` once the
/// catalog-dependent sizes (items, vocabulary, categories) are remapped.
pub fn same_architecture(a: &ModelConfig, b: &ModelConfig) -> bool {
    let strip =
        |c: &ModelConfig| ModelConfig { n_items: 0, vocab_size: 0, n_categories: 0, ..c.clone() };
    strip(a) == strip(b)
}

/// `from` (trained with `from_encoder`) re-expressed for `config` / `encoder`, built from
/// `catalog` (catalog item `i` = id row `i + 1`), on `device`. Fresh rows come from
/// `config.init(device)`, so seed the device first for reproducible runs.
pub fn remap_model(
    from: &SessionRankModel,
    from_config: &ModelConfig,
    from_encoder: &FeatureEncoder,
    config: &ModelConfig,
    encoder: &FeatureEncoder,
    catalog: &Catalog,
    device: &Device,
) -> Result<(SessionRankModel, RemapReport)> {
    if !same_architecture(from_config, config) {
        return Err(TrainError::Config(
            "warm start: the old model has another architecture".into(),
        ));
    }
    if catalog.len() != encoder.n_items() || config.n_items != encoder.n_items() {
        return Err(TrainError::Config(
            "warm start: catalog, encoder and config disagree on the number of items".into(),
        ));
    }
    // Row maps: new row → old row.
    let mut items = vec![Some(0)];
    items
        .extend(catalog.items().iter().map(|it| from_encoder.item_row(&it.id).map(|r| r as usize)));
    let old_categories: HashMap<&str, usize> = from_encoder
        .category_names()
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i + 1))
        .collect();
    let mut categories = vec![Some(0)];
    categories
        .extend(encoder.category_names().iter().map(|c| old_categories.get(c.as_str()).copied()));
    let old_vocab = from_encoder.tokenizer.vocab();
    let mut tokens = vec![None; config.vocab_size.max(1)];
    for (word, id) in encoder.tokenizer.vocab() {
        if let Some(slot) = tokens.get_mut(id as usize) {
            *slot = old_vocab.get(&word).map(|&o| o as usize);
        }
    }

    let fresh = config.init(device);
    let mut report = RemapReport::default();
    let mut warm = from.clone();
    (warm.items.ids, report.items) =
        remap_table(from.items.ids.as_ref(), fresh.items.ids.as_ref(), &items)?;
    (warm.items.categories, report.categories) =
        remap_table(from.items.categories.as_ref(), fresh.items.categories.as_ref(), &categories)?;
    (warm.items.tokens, report.tokens) =
        remap_table(from.items.tokens.as_ref(), fresh.items.tokens.as_ref(), &tokens)?;
    // Through a record: every tensor lands on `device`, with the fresh model's parameter ids.
    let model = fresh
        .try_load_record(warm.into_record())
        .map_err(|e| TrainError::Config(format!("warm start: the old weights do not fit: {e}")))?;
    Ok((model, report))
}

/// A table of `fresh`'s shape whose row `r` is `old`'s row `map[r]` where that exists.
fn remap_table(
    old: Option<&Embedding>,
    fresh: Option<&Embedding>,
    map: &[Option<usize>],
) -> Result<(Option<Embedding>, TableRows)> {
    let (Some(old), Some(fresh)) = (old, fresh) else {
        return Ok((fresh.cloned(), TableRows::default()));
    };
    let old_w = old.weight.val();
    let [n_old, d] = old_w.dims();
    let [n_new, d_new] = fresh.weight.val().dims();
    if d != d_new || map.len() != n_new {
        return Err(TrainError::Config(format!(
            "warm start: table of {n_old}×{d} cannot be remapped to {n_new}×{d_new}"
        )));
    }
    let device = old_w.device();
    let old_rows = read_f32(old_w)?;
    let mut rows = read_f32(fresh.weight.val())?;
    let mut counts = TableRows::default();
    for (r, o) in map.iter().enumerate() {
        match o {
            Some(o) if *o < n_old => {
                rows[r * d..(r + 1) * d].copy_from_slice(&old_rows[o * d..(o + 1) * d]);
                if r > 0 {
                    counts.carried += 1;
                }
            }
            _ if r > 0 => counts.new += 1,
            _ => {}
        }
    }
    let weight = Tensor::<2>::from_data(TensorData::new(rows, [n_new, d]), &device);
    Ok((Some(Embedding { weight: Param::from_tensor(weight) }), counts))
}
