//! What a re-rank call takes and gives, in the shape JS and HTTP clients send and receive:
//! the session's events and the candidates in, the [`Ranking`] out. A leaf module, so the
//! server, the browser package and the validators use these types without the engine.

use serde::{Deserialize, Serialize};
use sessionrank_data::EventKind;

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
}

/// Result of a re-rank call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranking {
    pub items: Vec<RankedItem>,
    /// False when the upstream order was returned unchanged; `reason` says why.
    pub personalised: bool,
    pub reason: Option<String>,
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
            })
            .collect(),
        personalised: false,
        reason: Some(reason.to_string()),
    }
}
