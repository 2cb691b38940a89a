//! `GET /v1/candidates?limit=N` — a page of candidate items in upstream order.
//!
//! sessionrank re-ranks a list that something upstream produced (the shop's search, category
//! page or retrieval model). A shop without one — and the demo storefront — can use this:
//! the catalog's most-interacted items, most first, with the content a browser needs to
//! encode items the live model does not know:
//!
//! ```json
//! {"source": "popularity", "items": [{"id": "123", "text": "…", "category": "7", "price_level": 9, "events": 812}]}
//! ```
//!
//! The answer changes only as events arrive, so it may be cached for a minute.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use sessionrank_core::reranker::MAX_CANDIDATES;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Items returned when the request names no `limit`.
pub const DEFAULT_LIMIT: usize = 48;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CandidatesQuery {
    limit: Option<String>,
}

pub async fn popular(State(state): State<AppState>, query: Result<Query<CandidatesQuery>, QueryRejection>) -> ApiResult<Response> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(Some("query".into()), e.body_text()))?;
    let limit = match query.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_CANDIDATES).contains(&n) => n,
            _ => return Err(ApiError::invalid("limit", format!("`{raw}` is not a whole number from 1 to {MAX_CANDIDATES}"))),
        },
    };
    let items = state.store.popular_items(limit).await?;
    let items: Vec<_> = items
        .into_iter()
        .map(|(it, n)| json!({"id": it.id, "text": it.text, "category": it.category, "price_level": it.price_level, "events": n}))
        .collect();
    let mut response = Json(json!({"source": "popularity", "items": items})).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    Ok(response)
}
