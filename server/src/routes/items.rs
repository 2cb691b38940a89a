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

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::JsonBody;
use super::bodies::item_batch;
use super::events::check_id;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub async fn upsert(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let items = item_batch(&body, state.config.max_items_per_request)?;
    state.store.upsert_items(&items).await?;
    state.pages.catalog_changed();
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
    let withdrawn = state.store.withdraw_item(&id).await?;
    state.pages.catalog_changed();
    if !withdrawn {
        return Err(ApiError::NotFound(format!("no item `{id}`")));
    }
    Ok(Json(json!({"withdrawn": id})))
}
