//! Browser bundles: the part of a model a shopper's browser downloads.
//!
//! A full bundle's size grows with the catalog: the item-id embedding (`n_items × d` floats:
//! 1.3 MB for the 10k-item bundled slice, 11 MB for Diginetica at d 64), the tokenizer and the
//! token embedding. None of that is needed to re-rank a page if the page's items arrive as
//! vectors — which is how Alibaba's EdgeRec ships on-device re-ranking: the server computes
//! each candidate's vector with the full item encoder (id + text + category + price) and
//! sends it with the candidate list; the device runs the session encoder and the scorer.
//!
//! So a browser bundle holds the same model with the catalog-sized tables cut to their
//! "unknown" row (`n_items = 0`, `vocab_size = 1`) and the category names (the content tower
//! still encodes an item that arrives without a vector from its category and price). It has
//! the same `model_version` as the full bundle it came from, so vectors from the server's
//! `/v1/models/{version}/vectors` and `/v1/candidates` belong to it by construction.
//!
//! Scores are unchanged: a vector the server computed is exactly the vector the full model
//! would compute in the browser (f32, the same code), and everything downstream of the item
//! table is the same weights. `tests/engine.rs` checks that a browser bundle fed the full
//! bundle's vectors ranks exactly like the full bundle.

use std::collections::BTreeMap;

use burn::module::Param;
use burn::nn::Embedding;
use burn::tensor::{Device, Tensor};
use sessionrank_model::ModelConfig;

use crate::bundle::{BundleKind, CATEGORIES, MANIFEST, WEIGHTS};
use crate::features::category_names;
use crate::weights::{load_weights, model_from_bytes, weights_bytes};
use crate::{CoreError, ModelBundle, Result};

/// The browser configuration of a full model's configuration: no item ids, no words.
pub fn browser_config(full: &ModelConfig) -> ModelConfig {
    ModelConfig { n_items: 0, vocab_size: 1, ..full.clone() }
}

impl ModelBundle {
    /// The browser bundle of this (full) bundle; a browser bundle is returned as it is.
    ///
    /// Deterministic: the same full bundle always gives the same bytes.
    pub fn browser(&self) -> Result<ModelBundle> {
        if self.manifest.kind == BundleKind::Browser {
            return Ok(self.clone());
        }
        let config = &self.manifest.config;
        let device = Device::flex();
        let mut model = model_from_bytes(config, self.file(WEIGHTS)?, &device)?;
        model.items.ids = model.items.ids.map(first_row);
        model.items.tokens = model.items.tokens.map(first_row);
        let weights = weights_bytes(&model)?;
        let browser = browser_config(config);
        // The cut weights must load into the browser architecture, or the bundle is useless.
        load_weights(browser.init(&device), &weights)?;
        let categories = category_names(&self.items()?.catalog());
        if categories.len() > browser.n_categories {
            return Err(CoreError::InvalidFile {
                file: MANIFEST.into(),
                message: "more categories than the model has".into(),
            });
        }
        let mut files = BTreeMap::new();
        files.insert(WEIGHTS.to_string(), weights);
        files.insert(
            CATEGORIES.to_string(),
            serde_json::to_vec(&categories).map_err(|e| CoreError::InvalidFile {
                file: CATEGORIES.into(),
                message: e.to_string(),
            })?,
        );
        let mut manifest = self.manifest.clone();
        manifest.kind = BundleKind::Browser;
        manifest.config = browser;
        Ok(ModelBundle::new(manifest, files))
    }
}

/// The table cut to its row 0 (the "unknown item" / padding row). It keeps the table's
/// parameter id: burnpack stores ids, and a fresh random one would make two derivations of
/// the same bundle differ in bytes — under a URL the server calls immutable.
fn first_row(e: Embedding) -> Embedding {
    let id = e.weight.id;
    let w = e.weight.val();
    let d = w.dims()[1];
    let row: Tensor<2> = w.slice([0..1, 0..d]);
    Embedding { weight: Param::initialized(id, row) }
}
