//! `PUT /v1/items`: insert or update catalog items.
//!
//! ```json
//! {"items": [{"id": "123", "text": "red running shoe", "category": "shoes", "price": 59.9}]}
//! ```
//!
//! `price` (the shop's currency; a number or a numeric string) becomes a log2 price level
//! through [`ItemContent::price_level_of`]; shops that bucket prices themselves may send
//! `price_level` (0..=15) instead. NaN, infinite or negative prices are a 422 naming the field.
//! Items are never deleted, only withdrawn (`DELETE /v1/items/{id}`: off the candidate pages,
//! kept for the models; a `PUT` brings one back); an update keeps the item's position in the
//! catalog. All items of a request are stored in one transaction.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};
use sessionrank_core::features::MAX_PRICE_LEVEL;
use sessionrank_core::{CoreError, ItemContent};
use sessionrank_data::Item;

use super::events::check_id;
use super::{JsonBody, parse_json};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Longest item text kept (the tokenizer reads the first tokens only anyway).
const MAX_TEXT_LEN: usize = 10_000;

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

pub async fn upsert(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let req: Upsert = parse_json(&body)?;
    let max = state.config.max_items_per_request;
    if req.items.is_empty() {
        return Err(ApiError::invalid("items", "no items"));
    }
    if req.items.len() > max {
        return Err(ApiError::invalid(
            "items",
            format!("{} items; at most {max} per request", req.items.len()),
        ));
    }
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(req.items.len());
    let mut items = Vec::with_capacity(req.items.len());
    for (i, it) in req.items.iter().enumerate() {
        check_id(&it.id, || format!("items[{i}].id"))?;
        if let Some(first) = seen.insert(it.id.as_str(), i) {
            return Err(ApiError::invalid(
                format!("items[{i}].id"),
                format!("duplicate of items[{first}]"),
            ));
        }
        if it.text.len() > MAX_TEXT_LEN {
            return Err(ApiError::invalid(
                format!("items[{i}].text"),
                format!("longer than {MAX_TEXT_LEN} bytes"),
            ));
        }
        if let Some(c) = &it.category {
            check_id(c, || format!("items[{i}].category"))?;
        }
        let price_level = match (it.price, it.price_level) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    format!("items[{i}].price_level"),
                    "give price or price_level, not both",
                ));
            }
            (Some(p), None) => {
                let field = format!("items[{i}].price");
                match ItemContent::price_level_of(p, &field) {
                    Ok(level) => Some(level),
                    Err(CoreError::InvalidInput { field, message }) => {
                        return Err(ApiError::invalid(field, message));
                    }
                    Err(other) => return Err(ApiError::invalid(field, other.to_string())),
                }
            }
            (None, Some(l)) if (0..=MAX_PRICE_LEVEL as i64).contains(&l) => Some(l as u8),
            (None, Some(_)) => {
                return Err(ApiError::invalid(
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
    state.store.upsert_items(&items).await?;
    state.items.extend(items.iter().map(|it| it.id.clone()));
    state.metrics.items_upserted(items.len());
    Ok(Json(json!({"upserted": items.len()})))
}

/// `DELETE /v1/items/{id}`: withdraw an item (sold out, discontinued, taken down). It leaves
/// the candidate pages at once; it stays in the catalog, so models keep its row and its events
/// still train them. A later `PUT` of the same id brings it back. 404 for an unknown id.
pub async fn withdraw(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> ApiResult<Json<Value>> {
    check_id(&id, || "id".into())?;
    if !state.store.withdraw_item(&id).await? {
        return Err(ApiError::NotFound(format!("no item `{id}`")));
    }
    Ok(Json(json!({"withdrawn": id})))
}
