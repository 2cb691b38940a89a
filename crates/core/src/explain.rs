//! Why an item is where it is: what the shop's rules did to it, and one short sentence a
//! merchandiser (or a shopper) can read.
//!
//! The session part of an explanation ("because you viewed …") comes from the model: the
//! session items whose vectors are closest to the candidate's. The rest comes from
//! [`crate::rules::arrange`], which records each rule's effect while it fills the slots, so an
//! explanation is never guessed after the fact.

use serde::{Deserialize, Serialize};

/// A direction of movement relative to where relevance alone would have put an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shift {
    Up,
    Down,
}

/// The displacement limit changed where an item went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Held {
    /// `Up`: placed earlier than relevance wanted, because it may not fall further below its
    /// usual position. `Down`: relevance wanted it higher, but it may not rise further.
    pub toward: Shift,
    /// The limit, in places from its usual position.
    pub limit: usize,
}

/// The per-category cap pushed an item out of a slot its relevance earned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capped {
    pub category: String,
    /// At most `max` items of one category among the first `top`.
    pub max: usize,
    pub top: usize,
}

/// What the rules did to one item. All empty when no rule touched it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Effects {
    /// The slot the shop pinned it to (0 = first). It is shown there unless hidden items made
    /// the list shorter than that, in which case it is among the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned: Option<usize>,
    /// Boost strength in (0, 1] (see [`crate::rules::BOOST_SCALE`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boosted: Option<f32>,
    /// Bury strength in (0, 1].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buried: Option<f32>,
    /// Diversity (maximal marginal relevance) moved it: `Up` = chosen over a more relevant
    /// item because it differs from the items above; `Down` = a less similar item was chosen
    /// over it. The first effect recorded wins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diversity: Option<Shift>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<Held>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capped: Option<Capped>,
}

impl Effects {
    /// No rule touched the item.
    pub fn is_none(&self) -> bool {
        *self == Self::default()
    }
}

/// Why a candidate is not shown at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HiddenReason {
    /// Its id is in the rules' `exclude` list.
    Excluded,
    /// The candidate was marked unavailable and the rules hide unavailable items.
    Unavailable,
}

/// One short paragraph: the session items that raised the item (`because`: their names, the
/// strongest first), then each rule's effect. Empty when there is nothing to say.
///
/// ```
/// use sessionrank_core::explain::{Effects, describe};
/// let e = Effects { boosted: Some(0.5), ..Effects::default() };
/// assert_eq!(describe(&e, &["Red scarf"]), "Because you viewed Red scarf. Promoted by the shop.");
/// ```
pub fn describe(effects: &Effects, because: &[&str]) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(slot) = effects.pinned {
        parts.push(format!("Placed at position {} by the shop.", slot + 1));
    }
    match because {
        [] => {}
        [a] => parts.push(format!("Because you viewed {a}.")),
        [a, b] => parts.push(format!("Because you viewed {a} and {b}.")),
        [rest @ .., last] => {
            parts.push(format!("Because you viewed {} and {last}.", rest.join(", ")))
        }
    }
    if effects.boosted.is_some() {
        parts.push("Promoted by the shop.".into());
    }
    if effects.buried.is_some() {
        parts.push("Demoted by the shop.".into());
    }
    match effects.diversity {
        Some(Shift::Up) => parts.push("Shown higher to vary the list.".into()),
        Some(Shift::Down) => parts.push("Moved down to vary the list.".into()),
        None => {}
    }
    if let Some(h) = effects.held {
        let places = if h.limit == 1 { "place" } else { "places" };
        parts.push(match h.toward {
            Shift::Up => format!("Kept within {} {places} of its usual position.", h.limit),
            Shift::Down => {
                format!("Would rank higher, but may move at most {} {places}.", h.limit)
            }
        });
    }
    if let Some(c) = &effects.capped {
        parts.push(format!(
            "Moved down: at most {} from {} in the first {}.",
            c.max, c.category, c.top
        ));
    }
    parts.join(" ")
}
