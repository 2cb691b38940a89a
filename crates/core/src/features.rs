//! Host-side feature encoding: items and sessions → the integer tensors the model reads.
//!
//! This is the one place that decides how an item becomes (id, tokens, category, price) and
//! how a session becomes (rows, kinds, gaps). The trainer, the server and the browser all call
//! it, so the three can never disagree about an input.

use std::collections::HashMap;

use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use sessionrank_data::price::{cap_price_level, price_level};
use sessionrank_data::{Catalog, EventKind};
use sessionrank_model::{ItemFeatures, SessionInput, time_gap_bucket};

use crate::{CoreError, ItemTokenizer, Result};

/// The price-level rule is `sessionrank-data`'s ([`sessionrank_data::price`]), shared with the
/// importers so that training and serving bucket prices alike; re-exported here for the server
/// and the browser package.
pub use sessionrank_data::price::MAX_PRICE_LEVEL;

/// Content of an item as a shop describes it (the JS/HTTP shape).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemContent {
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub price_level: Option<u8>,
}

impl ItemContent {
    /// Price level of a price in the shop's currency ([`sessionrank_data::price_level`], the
    /// rule the importers use). Rejects NaN, infinities and negative prices with a message
    /// naming `field`.
    pub fn price_level_of(price: f64, field: &str) -> Result<u8> {
        price_level(price).ok_or_else(|| {
            CoreError::input(field, format!("price must be a finite number >= 0, got {price}"))
        })
    }
}

/// An item as the model sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedItem {
    /// Id-embedding row (0 = unknown to the model).
    pub id: u32,
    pub tokens: Vec<u32>,
    /// 0 = unknown category.
    pub category: u32,
    /// 0 = unknown, else level + 1.
    pub price: u32,
}

impl EncodedItem {
    /// The padding row.
    pub fn padding() -> Self {
        Self { id: 0, tokens: Vec::new(), category: 0, price: 0 }
    }
}

/// Item index, category vocabulary and tokenizer: everything needed to encode inputs.
#[derive(Debug, Clone)]
pub struct FeatureEncoder {
    pub tokenizer: ItemTokenizer,
    pub max_tokens: usize,
    pub max_len: usize,
    pub max_candidates: usize,
    item_rows: HashMap<String, u32>,
    items: Vec<EncodedItem>,
    categories: HashMap<String, u32>,
    category_names: Vec<String>,
}

impl FeatureEncoder {
    /// Build from a catalog: item `i` of the catalog gets id `i + 1`; categories are numbered
    /// by first appearance from 1.
    pub fn from_catalog(
        catalog: &Catalog,
        tokenizer: ItemTokenizer,
        max_tokens: usize,
        max_len: usize,
        max_candidates: usize,
    ) -> Result<Self> {
        let category_names = category_names(catalog);
        let categories = category_rows(&category_names);
        let mut this = Self {
            tokenizer,
            max_tokens,
            max_len,
            max_candidates,
            item_rows: HashMap::with_capacity(catalog.len()),
            items: Vec::with_capacity(catalog.len()),
            categories,
            category_names,
        };
        for (i, item) in catalog.items().iter().enumerate() {
            let content = ItemContent {
                text: item.text.clone(),
                category: item.category.clone(),
                price_level: item.price_level,
            };
            let mut enc = this.encode_content(&content)?;
            enc.id = i as u32 + 1;
            this.item_rows.insert(item.id.clone(), i as u32 + 1);
            this.items.push(enc);
        }
        Ok(this)
    }

    /// The encoder of a browser bundle: no known items (every item arrives as a vector or as
    /// content), no text (see [`ItemTokenizer::without_text`]), the model's categories.
    pub fn for_browser(
        category_names: Vec<String>,
        max_tokens: usize,
        max_len: usize,
        max_candidates: usize,
    ) -> Self {
        Self {
            tokenizer: ItemTokenizer::without_text(),
            max_tokens,
            max_len,
            max_candidates,
            item_rows: HashMap::new(),
            items: Vec::new(),
            categories: category_rows(&category_names),
            category_names,
        }
    }

    /// Items known to the model (id rows `1..=n_items`).
    pub fn n_items(&self) -> usize {
        self.items.len()
    }

    pub fn n_categories(&self) -> usize {
        self.category_names.len()
    }

    pub fn category_names(&self) -> &[String] {
        &self.category_names
    }

    /// The category name of an item: its `content`'s when given, else the known item's.
    pub fn category_of<'a>(
        &'a self,
        id: &str,
        content: Option<&'a ItemContent>,
    ) -> Option<&'a str> {
        if let Some(c) = content.and_then(|c| c.category.as_deref()) {
            return Some(c);
        }
        let row = self.known(self.item_row(id)?)?.category;
        self.category_names.get((row as usize).checked_sub(1)?).map(String::as_str)
    }

    /// Id row of a known item.
    pub fn item_row(&self, id: &str) -> Option<u32> {
        self.item_rows.get(id).copied()
    }

    /// The encoded known item of id row `row` (1-based).
    pub fn known(&self, row: u32) -> Option<&EncodedItem> {
        row.checked_sub(1).and_then(|r| self.items.get(r as usize))
    }

    pub fn known_items(&self) -> &[EncodedItem] {
        &self.items
    }

    /// Encode an item the model may not know from its content alone (id 0).
    pub fn encode_content(&self, content: &ItemContent) -> Result<EncodedItem> {
        let tokens = self.tokenizer.encode(&content.text, self.max_tokens)?;
        let category =
            content.category.as_ref().and_then(|c| self.categories.get(c).copied()).unwrap_or(0);
        let price = content.price_level.map(|p| u32::from(cap_price_level(p)) + 1).unwrap_or(0);
        Ok(EncodedItem { id: 0, tokens, category, price })
    }

    /// Encode an item by id, falling back to its content when the model does not know it.
    /// Known items use the bundle's content (the same the model was trained with) unless
    /// none is stored and the caller supplies some.
    pub fn encode_item(&self, id: &str, content: Option<&ItemContent>) -> Result<EncodedItem> {
        match (self.item_row(id), content) {
            (Some(row), _) => Ok(self.items[row as usize - 1].clone()),
            (None, Some(c)) => self.encode_content(c),
            (None, None) => Ok(EncodedItem::padding()),
        }
    }

    /// Feature tensors for a table whose row 0 is padding and rows `1..` are `items`.
    pub fn features<'a>(
        &self,
        items: impl ExactSizeIterator<Item = &'a EncodedItem>,
        device: &Device,
    ) -> ItemFeatures {
        item_features(items, self.max_tokens, device)
    }
}

/// Category names in embedding-row order: numbered by first appearance in the catalog from 1
/// (0 = unknown). The one definition the trainer, the server and browser bundles share.
pub fn category_names(catalog: &Catalog) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut names = Vec::new();
    for item in catalog.items() {
        if let Some(c) = &item.category
            && seen.insert(c.as_str())
        {
            names.push(c.clone());
        }
    }
    names
}

fn category_rows(names: &[String]) -> HashMap<String, u32> {
    names.iter().enumerate().map(|(i, n)| (n.clone(), i as u32 + 1)).collect()
}

/// Feature tensors for a table whose row 0 is padding and rows `1..` are `items`.
pub fn item_features<'a>(
    items: impl ExactSizeIterator<Item = &'a EncodedItem>,
    max_tokens: usize,
    device: &Device,
) -> ItemFeatures {
    let n = items.len() + 1;
    let t = max_tokens.max(1);
    let mut ids = vec![0i64; n];
    let mut tokens = vec![0i64; n * t];
    let mut cats = vec![0i64; n];
    let mut prices = vec![0i64; n];
    for (i, item) in items.enumerate() {
        let r = i + 1;
        ids[r] = item.id as i64;
        cats[r] = item.category as i64;
        prices[r] = item.price as i64;
        for (j, &tok) in item.tokens.iter().take(t).enumerate() {
            tokens[r * t + j] = tok as i64;
        }
    }
    ItemFeatures {
        ids: int1(ids, device),
        tokens: Tensor::<2, Int>::from_data(TensorData::new(tokens, [n, t]), device),
        categories: int1(cats, device),
        prices: int1(prices, device),
    }
}

/// One event of a session, already mapped to a row of the item table in use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncodedEvent {
    pub row: u32,
    pub kind: EventKind,
    pub timestamp: Option<i64>,
}

/// Session tensors for a batch, right-padded to the longest (after keeping each session's
/// last `max_len` events).
pub fn session_input(
    sessions: &[&[EncodedEvent]],
    max_len: usize,
    device: &Device,
) -> SessionInput {
    let b = sessions.len();
    let len = sessions.iter().map(|s| s.len().min(max_len)).max().unwrap_or(1).max(1);
    let mut items = vec![0i64; b * len];
    let mut kinds = vec![0i64; b * len];
    let mut gaps = vec![0i64; b * len];
    let mut last = vec![0i64; b];
    for (i, s) in sessions.iter().enumerate() {
        let s = &s[s.len().saturating_sub(max_len)..];
        for (j, e) in s.iter().enumerate() {
            items[i * len + j] = e.row as i64;
            kinds[i * len + j] = e.kind as i64 + 1;
            let gap = match (j.checked_sub(1).and_then(|p| s[p].timestamp), e.timestamp) {
                (Some(prev), Some(now)) => Some(now - prev),
                _ => None,
            };
            gaps[i * len + j] = time_gap_bucket(gap) as i64;
        }
        last[i] = s.len().saturating_sub(1) as i64;
    }
    SessionInput {
        items: Tensor::<2, Int>::from_data(TensorData::new(items, [b, len]), device),
        kinds: Tensor::<2, Int>::from_data(TensorData::new(kinds, [b, len]), device),
        gaps: Tensor::<2, Int>::from_data(TensorData::new(gaps, [b, len]), device),
        last: int1(last, device),
    }
}

fn int1(v: Vec<i64>, device: &Device) -> Tensor<1, Int> {
    let n = v.len();
    Tensor::<1, Int>::from_data(TensorData::new(v, [n]), device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessionrank_model::ModelConfig;

    /// The model's price embedding has one row per encoded price: 0 (unknown) and
    /// `level + 1` for every level up to [`MAX_PRICE_LEVEL`].
    #[test]
    fn model_price_table_fits_every_level() {
        let config = ModelConfig::new();
        assert_eq!(config.n_price_levels, usize::from(MAX_PRICE_LEVEL) + 2);
        let encoder = FeatureEncoder::for_browser(Vec::new(), 4, 4, 4);
        for level in [None, Some(0), Some(MAX_PRICE_LEVEL), Some(u8::MAX)] {
            let content = ItemContent { price_level: level, ..ItemContent::default() };
            let price = encoder.encode_content(&content).map(|e| e.price as usize);
            assert!(
                price.as_ref().is_ok_and(|&p| p < config.n_price_levels),
                "{level:?}: {price:?}"
            );
        }
    }
}
