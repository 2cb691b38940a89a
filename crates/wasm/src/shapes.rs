//! The JavaScript shapes of events, candidates and rankings, and their conversion to the
//! engine's types (`sessionrank_core::{SessionEvent, Candidate, Ranking}`).
//!
//! JS names are camelCase (`itemId`, `priceLevel`); the snake_case names of the HTTP API
//! (`item_id`, `price_level`) are accepted too. Every number that comes from JS is checked
//! here, so the engine never sees a NaN.

use serde::{Deserialize, Serialize};
use sessionrank_core::explain::HiddenReason;
use sessionrank_core::ranking::HiddenItem;
use sessionrank_core::reranker::MAX_CANDIDATES;
use sessionrank_core::{Candidate, ItemContent, Rules, SessionEvent};
use sessionrank_data::EventKind;
use wasm_bindgen::{JsCast, JsValue};

use crate::error::{Error, ErrorCode, Result};
use crate::js::{describe, numbers, property};

/// An item id: a string, or an integer (shops often use numeric ids).
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum Id {
    Text(String),
    Number(f64),
}

impl Id {
    pub(crate) fn into_string(self, field: &str) -> Result<String> {
        let s = match self {
            Id::Text(s) => s,
            Id::Number(n) if n.is_finite() && n.fract() == 0.0 && n.abs() < 9.0e15 => {
                format!("{}", n as i64)
            }
            Id::Number(n) => {
                return Err(Error::input(
                    field,
                    format!("an item id must be a string or an integer, got {n}"),
                ));
            }
        };
        if s.trim().is_empty() {
            return Err(Error::input(field, "empty item id"));
        }
        Ok(s)
    }
}

/// What a shop knows about an item (used for items the bundle does not know).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Content {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    category: Option<Id>,
    /// A price in the shop's currency (→ log2 price level, as in training).
    #[serde(default)]
    price: Option<f64>,
    /// A price level 0..=15 directly (wins over `price`).
    #[serde(default, alias = "price_level")]
    price_level: Option<f64>,
}

impl Content {
    fn into_core(self, field: &str) -> Result<ItemContent> {
        let category = match self.category {
            Some(c) => Some(c.into_string(&format!("{field}.category"))?),
            None => None,
        };
        let price_level = match (self.price_level, self.price) {
            (Some(level), _) => {
                if !level.is_finite() || level < 0.0 || level.fract() != 0.0 {
                    return Err(Error::input(
                        format!("{field}.priceLevel"),
                        format!("must be an integer >= 0, got {level}"),
                    ));
                }
                Some(level.min(f64::from(sessionrank_core::features::MAX_PRICE_LEVEL)) as u8)
            }
            (None, Some(price)) => {
                let f = format!("{field}.price");
                Some(
                    ItemContent::price_level_of(price, &f)
                        .map_err(|e| Error::input(f, strip_field(&e.to_string())))?,
                )
            }
            (None, None) => None,
        };
        Ok(ItemContent { text: self.text.unwrap_or_default(), category, price_level })
    }
}

/// `CoreError::InvalidInput` displays as `field: message`; keep the message only.
fn strip_field(s: &str) -> String {
    s.split_once(": ").map(|(_, m)| m.to_string()).unwrap_or_else(|| s.to_string())
}

fn content(c: Option<Content>, field: &str) -> Result<Option<ItemContent>> {
    c.map(|c| c.into_core(&format!("{field}.content"))).transpose()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    #[serde(alias = "item_id")]
    item_id: Id,
    #[serde(default)]
    kind: Option<String>,
    /// Milliseconds since the Unix epoch (`Date.now()`); the call time when absent, unknown
    /// when `null` (checked before deserialising: serde cannot tell the two apart).
    #[serde(default)]
    timestamp: Option<f64>,
    #[serde(default)]
    content: Option<Content>,
}

/// `observe`'s argument → an engine event. `now_ms` is used when `timestamp` is absent
/// (`undefined`); `timestamp: null` means "time unknown" (the model then sees no time gap).
pub fn event(value: JsValue, now_ms: f64) -> Result<SessionEvent> {
    if !value.is_object() {
        return Err(Error::input("event", "expected an object like {itemId, kind, timestamp}"));
    }
    let unknown_time = js_sys::Reflect::get(&value, &"timestamp".into()).is_ok_and(|t| t.is_null());
    let value_vector = property(&value, "vector");
    let e: Event = serde_wasm_bindgen::from_value(value).map_err(|e| Error::input("event", e))?;
    let item_id = e.item_id.into_string("event.itemId")?;
    let kind = match e.kind.as_deref() {
        None => EventKind::View,
        Some(k) => EventKind::parse(k).ok_or_else(|| {
            Error::input(
                "event.kind",
                format!("unknown kind {k:?} (click, view, add_to_cart or purchase)"),
            )
        })?,
    };
    let timestamp = if unknown_time {
        None
    } else {
        let ms = e.timestamp.unwrap_or(now_ms);
        if !ms.is_finite() || ms < 0.0 {
            return Err(Error::input(
                "event.timestamp",
                format!("must be milliseconds since the epoch, got {ms}"),
            ));
        }
        Some((ms / 1000.0).floor() as i64)
    };
    let vector = vector_of(&value_vector, || "event.vector".into())?;
    Ok(SessionEvent { item_id, kind, timestamp, content: content(e.content, "event")?, vector })
}

/// An optional `vector` property: a `Float32Array` (no copy through serde) or an array of
/// numbers. Its length and finiteness are checked by the engine, which knows `d_model`.
fn vector_of(v: &JsValue, field: impl Fn() -> String) -> Result<Option<Vec<f32>>> {
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    if let Some(a) = v.dyn_ref::<js_sys::Float32Array>() {
        return Ok(Some(a.to_vec()));
    }
    if let Some(a) = v.dyn_ref::<js_sys::Array>() {
        return Ok(Some(numbers(a)));
    }
    Err(Error::input(field(), "expected a Float32Array or an array of numbers"))
}

/// `rerank`'s argument → engine candidates. The length is checked before any element is
/// converted, so an absurd list costs nothing. (Empty lists and duplicate ids are rejected
/// by the engine itself, with the same field names.)
pub fn candidates(value: &JsValue) -> Result<Vec<Candidate>> {
    let array = value
        .dyn_ref::<js_sys::Array>()
        .ok_or_else(|| Error::input("candidates", "expected an array"))?;
    let n = array.length() as usize;
    if n > MAX_CANDIDATES {
        return Err(Error::input(
            "candidates",
            format!("{n} candidates, at most {MAX_CANDIDATES} are accepted"),
        ));
    }
    let mut out = Vec::with_capacity(n);
    // Properties are read one by one rather than through serde: serde_wasm_bindgen walks
    // every entry of an object, the page's vector included, and this runs on every click.
    // Field names are only formatted on the error path.
    for (i, v) in array.iter().enumerate() {
        let field = || format!("candidates[{i}]");
        let c = if v.is_string() || v.as_f64().is_some() {
            Candidate {
                item_id: id_of(&v, || format!("candidates[{i}].itemId"))?,
                content: None,
                vector: None,
                available: true,
            }
        } else if v.is_object() {
            let mut id = property(&v, "itemId");
            if id.is_undefined() {
                id = property(&v, "item_id");
            }
            if id.is_undefined() || id.is_null() {
                return Err(Error::input(field(), "missing field `itemId`"));
            }
            let item_id = id_of(&id, || format!("candidates[{i}].itemId"))?;
            let vector = vector_of(&property(&v, "vector"), || format!("candidates[{i}].vector"))?;
            let c = property(&v, "content");
            let content = if c.is_undefined() || c.is_null() {
                None
            } else {
                let c: Content = serde_wasm_bindgen::from_value(c)
                    .map_err(|e| Error::input(format!("{}.content", field()), e))?;
                Some(c.into_core(&format!("{}.content", field()))?)
            };
            // Only an explicit `available: false` marks an item unavailable.
            let available = property(&v, "available").as_bool() != Some(false);
            Candidate { item_id, content, vector, available }
        } else {
            return Err(Error::input(
                field(),
                "expected an item id or {itemId, vector?, content?}",
            ));
        };
        out.push(c);
    }
    Ok(out)
}

/// A JS string or integer as an item id (the fast path of [`Id`]).
fn id_of(v: &JsValue, field: impl Fn() -> String) -> Result<String> {
    match v.as_string() {
        Some(s) if !s.trim().is_empty() => Ok(s),
        Some(s) => Id::Text(s).into_string(&field()),
        None => match v.as_f64() {
            Some(n) => Id::Number(n).into_string(&field()),
            None => Err(Error::input(field(), "an item id must be a string or an integer")),
        },
    }
}

/// A session event as `session()` returns it (and as `observe` accepts it back).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventOut<'a> {
    item_id: &'a str,
    kind: &'static str,
    timestamp: Option<f64>,
    /// The item's vector when the session knows it (so a replayed session scores the same).
    #[serde(skip_serializing_if = "Option::is_none")]
    vector: Option<&'a [f32]>,
}

impl<'a> From<&'a SessionEvent> for EventOut<'a> {
    fn from(e: &'a SessionEvent) -> Self {
        let kind = match e.kind {
            EventKind::View => "view",
            EventKind::AddToCart => "add_to_cart",
            EventKind::Purchase => "purchase",
        };
        Self {
            item_id: &e.item_id,
            kind,
            timestamp: e.timestamp.map(|s| s as f64 * 1000.0),
            vector: e.vector.as_deref(),
        }
    }
}

/// Where `millis` went (`performance.now()` resolution: 0.1 ms unless cross-origin isolated).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    /// Checking and converting the candidates from JS.
    pub input_ms: f64,
    /// The engine: feature encoding and the model's forward pass.
    pub model_ms: f64,
    /// Reading scores back, explanations and sorting.
    pub finish_ms: f64,
    /// Of which the shop's rules (reading them from JS included); 0 without rules.
    pub rules_ms: f64,
}

/// `rerank`'s optional second argument: `undefined`/`null` = no rules (the model's order).
/// camelCase names, snake_case accepted, unknown names refused (`invalid_rules`).
pub fn rules(value: JsValue) -> Result<Rules> {
    if value.is_undefined() || value.is_null() {
        return Ok(Rules::default());
    }
    if !value.is_object() {
        return Err(
            Error::new(ErrorCode::InvalidRules, "rules: expected an object").with("field", "rules")
        );
    }
    // Through JSON: serde_wasm_bindgen reads only the fields a struct declares, so a
    // misspelt rule would be ignored silently; serde_json refuses it (rules are a few bytes).
    let bad = |e: String| {
        Error::new(ErrorCode::InvalidRules, format!("rules: {e}")).with("field", "rules")
    };
    let json = js_sys::JSON::stringify(&value)
        .map_err(|e| bad(describe(&e)))?
        .as_string()
        .unwrap_or_default();
    let rules: Rules = serde_json::from_str(&json).map_err(|e| bad(e.to_string()))?;
    rules.validate()?;
    Ok(rules)
}

/// A candidate the rules did not show.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HiddenOut {
    pub item_id: String,
    pub upstream_rank: usize,
    pub reason: HiddenReason,
}

impl From<&HiddenItem> for HiddenOut {
    fn from(h: &HiddenItem) -> Self {
        Self { item_id: h.item_id.clone(), upstream_rank: h.upstream_rank, reason: h.reason }
    }
}
