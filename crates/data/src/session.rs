//! The one session format every importer produces and every consumer (trainer, evaluator,
//! server, browser) reads.
//!
//! A [`Dataset`] is a [`Catalog`] of items plus sessions of typed [`Event`]s. Items are
//! addressed inside the process by a dense [`ItemIdx`] (`0..catalog.len()`); the external id a
//! shop uses (a SKU, an ASIN, a Diginetica item id) stays in [`Item::id`] and is what crosses
//! every API boundary.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Dense, 0-based index of an item in its [`Catalog`]. Never exposed to shops.
pub type ItemIdx = u32;

/// What the shopper did. Order matters: a stronger signal has a larger discriminant, and the
/// model embeds `kind as usize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A product view / click (the only kind Diginetica and Amazon Beauty have).
    #[serde(alias = "click")]
    View = 0,
    /// The item was put in the basket.
    AddToCart = 1,
    /// The item was bought.
    Purchase = 2,
}

impl EventKind {
    /// Number of kinds (size of the model's event-type embedding).
    pub const COUNT: usize = 3;

    /// Parse the names used in datasets and in the HTTP/JS APIs.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "view" | "click" | "pageview" => Some(Self::View),
            "add_to_cart" | "addtocart" | "cart" => Some(Self::AddToCart),
            "purchase" | "transaction" | "buy" => Some(Self::Purchase),
            _ => None,
        }
    }
}

/// One thing a shopper did to one item.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub item: ItemIdx,
    pub kind: EventKind,
    /// Seconds since the Unix epoch, when the dataset has them.
    pub timestamp: Option<i64>,
}

impl Event {
    /// A view without a timestamp (Diginetica SR-GNN split, Amazon Beauty).
    pub fn view(item: ItemIdx) -> Self {
        Self { item, kind: EventKind::View, timestamp: None }
    }
}

/// A shopper's session (or, for Amazon Beauty, a user's history), events in time order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub events: Vec<Event>,
}

/// An item of the catalog with the content the model's content tower reads.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Item {
    /// The shop's id (external; unique in a catalog).
    pub id: String,
    /// Free text: title words, brand, category path. May be empty.
    pub text: String,
    /// Leaf category, as the shop names it.
    pub category: Option<String>,
    /// Price level `0..=MAX_PRICE_LEVEL` (log2 buckets, see [`crate::price`]).
    pub price_level: Option<u8>,
}

/// Items, addressable by dense index and by external id.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Catalog {
    items: Vec<Item>,
    #[serde(skip)]
    index: HashMap<String, ItemIdx>,
}

impl Catalog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Insert an item or update the content of an existing one; returns its index.
    pub fn upsert(&mut self, item: Item) -> ItemIdx {
        if let Some(&idx) = self.index.get(&item.id) {
            self.items[idx as usize] = item;
            return idx;
        }
        let idx = self.items.len() as ItemIdx;
        self.index.insert(item.id.clone(), idx);
        self.items.push(item);
        idx
    }

    /// Index of an item, inserting a content-less item when the id is new.
    pub fn intern(&mut self, id: &str) -> ItemIdx {
        match self.index.get(id) {
            Some(&idx) => idx,
            None => self.upsert(Item { id: id.to_string(), ..Item::default() }),
        }
    }

    pub fn get(&self, idx: ItemIdx) -> Option<&Item> {
        self.items.get(idx as usize)
    }

    pub fn lookup(&self, id: &str) -> Option<ItemIdx> {
        self.index.get(id).copied()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Rebuild the id → index map (after deserialising).
    pub fn reindex(&mut self) {
        self.index =
            self.items.iter().enumerate().map(|(i, it)| (it.id.clone(), i as ItemIdx)).collect();
    }
}

/// One evaluation case: the events so far and the item that came next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestCase {
    pub prefix: Vec<Event>,
    pub target: ItemIdx,
}

/// What one [`Session`] of a dataset is. Set by the importer, because the files say it (a
/// `user_id` column, a one-line-per-user file) and the numbers alone do not; the trainer's
/// presets and the evaluation protocol follow it, never the dataset's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    /// Anonymous shopping sessions, minutes long (Diginetica, RetailRocket, a shop's live
    /// sessions): a repeated item is a real next click, so it stays rankable.
    #[default]
    Sessions,
    /// One user's whole history per sequence, months long (Amazon Beauty, RecBole files grouped
    /// by `user_id`): the next item is a new one, so evaluation masks the history (S3-Rec).
    Histories,
}

impl std::fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sessions => "sessions",
            Self::Histories => "user histories",
        })
    }
}

/// A dataset in the session format, already split.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dataset {
    /// Short name: `diginetica`, `amazon-beauty`, `retailrocket`, or the RecBole dataset name.
    /// A label only: nothing is chosen by it (see [`Dataset::kind`]).
    pub name: String,
    /// Sessions or user histories (datasets written before this field existed are sessions).
    #[serde(default)]
    pub kind: DatasetKind,
    pub catalog: Catalog,
    /// Training sessions; the trainer predicts every event from the ones before it.
    pub train: Vec<Session>,
    /// Held-out cases for early stopping (never used for reported numbers).
    pub valid: Vec<TestCase>,
    /// Held-out cases for the reported numbers.
    pub test: Vec<TestCase>,
}
