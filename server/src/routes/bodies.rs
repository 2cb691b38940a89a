//! The JSON bodies of `POST /v1/events` and `PUT /v1/items`: their shapes and every check on
//! their values that needs no database (see `events.rs` and `items.rs` for the API they
//! describe).
//!
//! A leaf that names no other module of the server (no axum, no state, no `crate::`): the
//! fuzz crate (`crates/fuzz`, target `bodies`) compiles this very file without pulling the
//! whole service into its instrumented build. The handlers turn a [`BodyError`] into the
//! API's error (`routes/mod.rs`).

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use sessionrank_core::features::MAX_PRICE_LEVEL;
use sessionrank_core::{CoreError, ItemContent};
use sessionrank_data::{EventKind, Item};

/// Longest id (session, item, category) accepted.
pub const MAX_ID_LEN: usize = 256;
/// Timestamps are seconds; anything past this (year 5138) is a milliseconds mix-up.
pub const MAX_TIMESTAMP: i64 = 100_000_000_000;
/// Longest item text kept (the tokenizer reads the first tokens only anyway).
pub const MAX_TEXT_LEN: usize = 10_000;

/// What is wrong with a body, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON (400); `field` is `body` unless the parser got as far as a key.
    Malformed { field: String, message: String },
    /// Well-formed, but a value or the shape is unacceptable (422).
    Invalid { field: String, message: String },
}

impl BodyError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), message: message.into() }
    }
}

/// One event of a batch, checked: ids plain, the type known, the time in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBody {
    pub session_id: String,
    pub item_id: String,
    pub kind: EventKind,
    /// Seconds since the Unix epoch, in `0..MAX_TIMESTAMP`.
    pub timestamp: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    events: Vec<EventIn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventIn {
    session_id: String,
    item_id: String,
    #[serde(rename = "type")]
    kind: String,
    timestamp: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Upsert {
    items: Vec<ItemIn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemIn {
    id: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    category: Option<String>,
    #[serde(default, deserialize_with = "number_or_string")]
    price: Option<f64>,
    #[serde(default)]
    price_level: Option<i64>,
}

/// A price as a JSON number or a string (`"59.90"`, `"NaN"`): shops send both, and a NaN can
/// only arrive as a string, which must be a 422 naming the field rather than a parse error.
fn number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            n.as_f64().map(Some).ok_or_else(|| serde::de::Error::custom("not a finite number"))
        }
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("`{s}` is not a number"))),
        Some(other) => Err(serde::de::Error::custom(format!("expected a number, got {other}"))),
    }
}

/// Check an id field: non-empty, not too long, no control characters.
pub fn check_id(value: &str, field: impl FnOnce() -> String) -> Result<(), BodyError> {
    if value.trim().is_empty() {
        return Err(BodyError::invalid(field(), "must not be empty"));
    }
    if value.len() > MAX_ID_LEN {
        return Err(BodyError::invalid(field(), format!("longer than {MAX_ID_LEN} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(BodyError::invalid(field(), "contains control characters"));
    }
    Ok(())
}

/// The events of a `POST /v1/events` body (at most `max`), every value checked. Whether each
/// item is in the catalog is the handler's question (the database's).
pub fn event_batch(body: &[u8], max: usize) -> Result<Vec<EventBody>, BodyError> {
    let batch: Batch = parse_json(body)?;
    if batch.events.is_empty() {
        return Err(BodyError::invalid("events", "the batch is empty"));
    }
    if batch.events.len() > max {
        return Err(BodyError::invalid(
            "events",
            format!("{} events; at most {max} per request", batch.events.len()),
        ));
    }
    let mut events = Vec::with_capacity(batch.events.len());
    for (i, e) in batch.events.into_iter().enumerate() {
        check_id(&e.session_id, || format!("events[{i}].session_id"))?;
        check_id(&e.item_id, || format!("events[{i}].item_id"))?;
        let kind = EventKind::parse(&e.kind).ok_or_else(|| {
            BodyError::invalid(
                format!("events[{i}].type"),
                format!(
                    "unknown event type `{}` (expected view, click, add_to_cart or purchase)",
                    e.kind
                ),
            )
        })?;
        if !(0..MAX_TIMESTAMP).contains(&e.timestamp) {
            return Err(BodyError::invalid(
                format!("events[{i}].timestamp"),
                "must be seconds since the Unix epoch",
            ));
        }
        events.push(EventBody {
            session_id: e.session_id,
            item_id: e.item_id,
            kind,
            timestamp: e.timestamp,
        });
    }
    Ok(events)
}

/// The items of a `PUT /v1/items` body (at most `max`), checked, prices turned into levels.
pub fn item_batch(body: &[u8], max: usize) -> Result<Vec<Item>, BodyError> {
    let req: Upsert = parse_json(body)?;
    if req.items.is_empty() {
        return Err(BodyError::invalid("items", "no items"));
    }
    if req.items.len() > max {
        return Err(BodyError::invalid(
            "items",
            format!("{} items; at most {max} per request", req.items.len()),
        ));
    }
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(req.items.len());
    let mut items = Vec::with_capacity(req.items.len());
    for (i, it) in req.items.iter().enumerate() {
        check_id(&it.id, || format!("items[{i}].id"))?;
        if let Some(first) = seen.insert(it.id.as_str(), i) {
            return Err(BodyError::invalid(
                format!("items[{i}].id"),
                format!("duplicate of items[{first}]"),
            ));
        }
        if it.text.len() > MAX_TEXT_LEN {
            return Err(BodyError::invalid(
                format!("items[{i}].text"),
                format!("longer than {MAX_TEXT_LEN} bytes"),
            ));
        }
        if let Some(c) = &it.category {
            check_id(c, || format!("items[{i}].category"))?;
        }
        let price_level = match (it.price, it.price_level) {
            (Some(_), Some(_)) => {
                return Err(BodyError::invalid(
                    format!("items[{i}].price_level"),
                    "give price or price_level, not both",
                ));
            }
            (Some(p), None) => {
                let field = format!("items[{i}].price");
                match ItemContent::price_level_of(p, &field) {
                    Ok(level) => Some(level),
                    Err(CoreError::InvalidInput { field, message }) => {
                        return Err(BodyError::invalid(field, message));
                    }
                    Err(other) => return Err(BodyError::invalid(field, other.to_string())),
                }
            }
            (None, Some(l)) if (0..=i64::from(MAX_PRICE_LEVEL)).contains(&l) => Some(l as u8),
            (None, Some(_)) => {
                return Err(BodyError::invalid(
                    format!("items[{i}].price_level"),
                    format!("must be 0..={MAX_PRICE_LEVEL}"),
                ));
            }
            (None, None) => None,
        };
        items.push(Item {
            id: it.id.clone(),
            text: it.text.clone(),
            category: it.category.clone(),
            price_level,
        });
    }
    Ok(items)
}

/// Deserialize a body, naming the JSON path of the first problem: malformed JSON is
/// [`BodyError::Malformed`], a well-formed document of the wrong shape (wrong type, missing
/// or unknown field) [`BodyError::Invalid`].
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        let field = field_of(&path, &message);
        match inner.classify() {
            serde_json::error::Category::Data => {
                BodyError::Invalid { field: field.unwrap_or_else(|| "body".into()), message }
            }
            _ => BodyError::Malformed {
                field: field.unwrap_or_else(|| "body".into()),
                message: format!("malformed JSON: {message}"),
            },
        }
    })?;
    de.end().map_err(|e| BodyError::Malformed {
        field: "body".into(),
        message: format!("malformed JSON: {e}"),
    })?;
    Ok(value)
}

/// The path of the value at fault. serde reports a missing or unknown field at the object
/// that should (not) hold it; the field's own name reads better. `?` is serde_path_to_error's
/// "no position yet" (malformed JSON before the first key): the whole body.
fn field_of(path: &str, message: &str) -> Option<String> {
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|p| message.strip_prefix(p))
        .and_then(|rest| rest.split('`').next());
    match (path, named) {
        ("." | "?", Some(name)) => Some(name.to_string()),
        ("." | "?", None) => None,
        // An unknown field's path already ends with it; a missing field's does not.
        (p, Some(name)) if !p.ends_with(&format!(".{name}")) && p != name => {
            Some(format!("{p}.{name}"))
        }
        (p, _) => Some(p.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::{BodyError, event_batch, field_of, item_batch};

    #[test]
    fn fields_are_named() {
        assert_eq!(
            field_of("events[2]", "missing field `timestamp` at line 1 column 9").as_deref(),
            Some("events[2].timestamp")
        );
        assert_eq!(field_of(".", "missing field `events`").as_deref(), Some("events"));
        assert_eq!(field_of("items[0].price", "invalid type").as_deref(), Some("items[0].price"));
        assert_eq!(field_of(".", "expected value"), None);
        assert_eq!(field_of("?", "key must be a string at line 1 column 2"), None);
        assert_eq!(
            field_of("events[0].colour", "unknown field `colour`, expected one of …").as_deref(),
            Some("events[0].colour")
        );
        assert_eq!(
            field_of("event", "unknown field `event`, expected `events`").as_deref(),
            Some("event")
        );
    }

    #[test]
    fn bodies_parse_and_name_the_field_at_fault() {
        let ok = br#"{"events": [{"session_id": "s", "item_id": "1", "type": "click",
            "timestamp": 5}]}"#;
        assert_eq!(event_batch(ok, 10).map(|e| e.len()), Ok(1));
        let bad = br#"{"events": [{"session_id": "s", "item_id": "1", "type": "view",
            "timestamp": -1}]}"#;
        assert!(matches!(event_batch(bad, 10),
            Err(BodyError::Invalid { field, .. }) if field == "events[0].timestamp"));
        assert!(matches!(event_batch(b"{", 10), Err(BodyError::Malformed { .. })));
        let items = br#"{"items": [{"id": "a", "price": "NaN"}]}"#;
        assert!(matches!(item_batch(items, 10),
            Err(BodyError::Invalid { field, .. }) if field == "items[0].price"));
        let items = br#"{"items": [{"id": "a", "price": 3}, {"id": "b", "price_level": 15}]}"#;
        let levels = item_batch(items, 10).map(|v| v.iter().map(|i| i.price_level).collect());
        assert_eq!(levels, Ok(vec![Some(2), Some(15)]));
    }
}
