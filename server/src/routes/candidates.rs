//! `GET /v1/candidates?limit=N` — a page of candidate items in upstream order, with their
//! vectors.
//!
//! sessionrank re-ranks a list that something upstream produced (the shop's search, category
//! page or retrieval model). A shop without one — and the demo storefront — can use this:
//! the catalog's most-interacted items, most first, each with its content and its vector from
//! the live model's item encoder:
//!
//! ```json
//! {"source": "popularity", "model_version": "20261123-081500-3f2a9c1e",
//!  "items": [{"id": "123", "text": "…", "category": "7", "price_level": 9, "events": 812, "vector": [0.12, …]}]}
//! ```
//!
//! The vectors are why a browser needs only the small browser bundle
//! (`/v1/models/{model_version}/browser/manifest.json`): it never sees the item-id table or
//! the tokenizer, the server encodes every candidate — items the model knows from id and
//! trained content, new items from their stored content — with the full model, the same code
//! path as `/v1/models/{version}/vectors` ([`crate::version::LoadedModel::item_vectors`]).
//! `model_version` names the version the vectors belong to, so a page loads that version's
//! browser bundle even if the live model changes between its two requests.
//!
//! Without a live model (or if it cannot encode) the page is still served — it is the
//! upstream order, which must not depend on the model — with `model_version: null` and no
//! vectors; the browser then keeps the upstream order.
//!
//! The answer changes only as events arrive and models are published, so it may be cached
//! for a minute. The server keeps it in memory itself ([`crate::pages`]): a page is ranked
//! from the per-item event counts (`item_counts`, brought up to date by a scan of the events
//! stored since the last page, never of all of them) and encoded
//! once per (limit, model version), refreshed by one request at a time when the catalog
//! changes (at once), events arrive (at most once a second) or `candidates_ttl_s` passes.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sessionrank_core::ItemContent;
use sessionrank_core::reranker::MAX_CANDIDATES;

use bytes::Bytes;

use crate::error::{ApiError, ApiResult};
use crate::pages::PageKey;
use crate::routes::models::ONE_MINUTE;
use crate::state::AppState;
use crate::version::LoadedModel;

/// Items returned when the request names no `limit`.
pub const DEFAULT_LIMIT: usize = 48;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CandidatesQuery {
    limit: Option<String>,
}

/// The answer. `vector` is serialised from `f32` directly: the shortest text that reads back
/// as the same `f32` (JSON through `serde_json::Value` would widen it to `f64` digits).
#[derive(Debug, Serialize)]
struct CandidatePage {
    source: &'static str,
    model_version: Option<String>,
    items: Vec<CandidateItem>,
}

#[derive(Debug, Serialize)]
struct CandidateItem {
    id: String,
    text: String,
    category: Option<String>,
    price_level: Option<u8>,
    events: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    vector: Option<Vec<f32>>,
}

pub async fn popular(
    State(state): State<AppState>,
    query: Result<Query<CandidatesQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(query) =
        query.map_err(|e| ApiError::bad_request(Some("query".into()), e.body_text()))?;
    let limit = match query.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_CANDIDATES).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid(
                    "limit",
                    format!("`{raw}` is not a whole number from 1 to {MAX_CANDIDATES}"),
                ));
            }
        },
    };
    let model = state.models.current();
    let key = PageKey { limit, model_version: model.as_ref().map(|m| m.version().to_string()) };
    let build_state = state.clone();
    let page = state.pages.get(&key, move || build(build_state, limit, model)).await?;
    let mut response =
        ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], page.body.clone())
            .into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(ONE_MINUTE));
    Ok(response)
}

/// The page's JSON: the ranked items from the store, their vectors from `model`.
async fn build(state: AppState, limit: usize, model: Option<Arc<LoadedModel>>) -> ApiResult<Bytes> {
    // A page with slightly older counts beats no page: the counts are a write, which a
    // locked or failing database refuses while it still serves reads.
    if let Err(e) = state.store.count_new_events().await {
        tracing::warn!("candidates ranked without the newest events: {e}");
    }
    let mut items: Vec<CandidateItem> = state
        .store
        .popular_items(limit)
        .await?
        .into_iter()
        .map(|(it, n)| CandidateItem {
            id: it.id,
            text: it.text,
            category: it.category,
            price_level: it.price_level,
            events: n,
            vector: None,
        })
        .collect();
    let mut model_version = None;
    if let Some(model) = model {
        let inputs: Vec<(String, Option<ItemContent>)> = items
            .iter()
            .map(|it| {
                (
                    it.id.clone(),
                    Some(ItemContent {
                        text: it.text.clone(),
                        category: it.category.clone(),
                        price_level: it.price_level,
                    }),
                )
            })
            .collect();
        let version = model.version().to_string();
        match tokio::task::spawn_blocking(move || model.item_vectors(&inputs))
            .await
            .map_err(ApiError::internal)?
        {
            Ok(vectors) => {
                for (item, vector) in items.iter_mut().zip(vectors) {
                    item.vector = vector;
                }
                model_version = Some(version);
            }
            Err(e) => tracing::error!(
                "candidates without vectors: the live model {version} cannot encode them: {e:#}"
            ),
        }
    }
    let page = CandidatePage { source: "popularity", model_version, items };
    Ok(Bytes::from(serde_json::to_vec(&page).map_err(ApiError::internal)?))
}
