//! What a re-rank call takes and gives, in the shape JS and HTTP clients send and receive:
//! the session's events and the candidates in, the [`Ranking`] out. A leaf module, so the
//! server, the browser package and the validators use these types without the engine.

use serde::{Deserialize, Serialize};
use sessionrank_data::EventKind;

use crate::explain::{Effects, HiddenReason, describe};
use crate::features::ItemContent;

/// One thing the shopper did (the JS/HTTP shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionEvent {
    pub item_id: String,
    #[serde(default = "default_kind")]
    pub kind: EventKind,
    /// Seconds since the Unix epoch.
    #[serde(default)]
    pub timestamp: Option<i64>,
    /// Content for an item the bundle may not know.
    #[serde(default)]
    pub content: Option<ItemContent>,
    /// The item's vector from the server (`d_model` numbers); see [`Candidate::vector`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
}

fn default_kind() -> EventKind {
    EventKind::View
}

/// One candidate the storefront would show, in upstream order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub item_id: String,
    #[serde(default)]
    pub content: Option<ItemContent>,
    /// The item's vector as the full model's item encoder computed it on the server
    /// (`/v1/candidates`, `/v1/models/{version}/vectors`): `d_model` finite numbers. When
    /// given it is used as is — this is how a browser bundle, which has no item table, knows
    /// the items of a page. Wins over `content` and over the bundle's own item table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f32>>,
    /// `false` marks an item the shop cannot sell now (out of stock): the rules hide it
    /// unless they say otherwise (`Rules::hide_unavailable`).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub available: bool,
}

impl Candidate {
    /// An available candidate known by its id alone.
    pub fn new(item_id: impl Into<String>) -> Self {
        Self { item_id: item_id.into(), content: None, vector: None, available: true }
    }
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// A session event that contributed to a candidate's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Because {
    pub item_id: String,
    /// Similarity of the candidate to that event's item (dot product of item vectors).
    pub weight: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedItem {
    pub item_id: String,
    pub score: f32,
    /// Position in the list the storefront passed in (0 = first).
    pub upstream_rank: usize,
    /// Up to two session items most similar to this candidate, strongest first.
    pub because: Vec<Because>,
    /// What the shop's rules did to it (absent when nothing).
    #[serde(default, skip_serializing_if = "Effects::is_none")]
    pub effects: Effects,
}

impl RankedItem {
    /// One short sentence on why the item is here (session items by id; see
    /// [`describe`] to name them otherwise). Empty when there is nothing to say.
    pub fn explanation(&self) -> String {
        let because: Vec<&str> = self.because.iter().map(|b| b.item_id.as_str()).collect();
        describe(&self.effects, &because)
    }
}

/// A candidate the rules did not show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HiddenItem {
    pub item_id: String,
    pub upstream_rank: usize,
    pub reason: HiddenReason,
}

/// Result of a re-rank call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranking {
    pub items: Vec<RankedItem>,
    /// False when the upstream order was returned unchanged; `reason` says why.
    pub personalised: bool,
    pub reason: Option<String>,
    /// Candidates the rules hid (excluded or unavailable), in upstream order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden: Vec<HiddenItem>,
}

/// The candidates unchanged, with the reason personalisation did not apply.
pub fn upstream(candidates: &[Candidate], reason: &str) -> Ranking {
    Ranking {
        items: candidates
            .iter()
            .enumerate()
            .map(|(i, c)| RankedItem {
                item_id: c.item_id.clone(),
                score: 0.0,
                upstream_rank: i,
                because: Vec::new(),
                effects: Effects::default(),
            })
            .collect(),
        personalised: false,
        reason: Some(reason.to_string()),
        hidden: Vec::new(),
    }
}
