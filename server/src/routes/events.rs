//! `POST /v1/events`: a batch of session events.
//!
//! ```json
//! {"events": [{"session_id": "s1", "item_id": "123", "type": "view", "timestamp": 1732350000}]}
//! ```
//!
//! * `type` is `view` (alias `click`), `add_to_cart` or `purchase`; `timestamp` is seconds
//!   since the Unix epoch.
//! * Every `item_id` must be in the catalog (`PUT /v1/items` first). An unknown id rejects the
//!   whole batch with 422 naming `events[i].item_id`: an event the model cannot attach to an
//!   item would be dropped silently at training time, and a typo in an integration should
//!   surface on day one, not in a model that quietly learns less.
//! * The batch is stored in one transaction: all of it or nothing. The answer (200) comes only
//!   after the commit.
//! * With an `Idempotency-Key` header a retried request (same key, same body) stores nothing
//!   and gets the first answer again (with `Idempotent-Replayed: true`); the same key with
//!   another body is a 422. Keys are remembered for 24 hours.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sessionrank_data::EventKind;

use super::JsonBody;
use super::bodies::{self, event_batch};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::{Ingested, NewEvent};

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Check an id field: non-empty, not too long, no control characters.
pub fn check_id(value: &str, field: impl FnOnce() -> String) -> ApiResult<()> {
    Ok(bodies::check_id(value, field)?)
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(v) = headers.get(IDEMPOTENCY_KEY) else { return Ok(None) };
    let bad = || {
        ApiError::bad_request(
            Some("Idempotency-Key".into()),
            "must be 1 to 255 visible ASCII characters",
        )
    };
    let s = v.to_str().map_err(|_| bad())?;
    if s.is_empty() || s.len() > 255 || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    Ok(Some(s.to_string()))
}

pub async fn ingest(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let key = idempotency_key(&headers)?;
    let events: Vec<NewEvent> = event_batch(&body, state.config.max_events_per_request)?
        .into_iter()
        .map(|e| NewEvent {
            session_id: e.session_id,
            item_id: e.item_id,
            kind: e.kind,
            timestamp: e.timestamp,
        })
        .collect();
    check_items_exist(&state, &events).await?;

    let request_sha256 = sessionrank_core::bundle::sha256_hex(&body);
    let answer = json!({"accepted": events.len()}).to_string();
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    match state.store.ingest_events(key, request_sha256.clone(), events, answer.clone()).await? {
        Ingested::Stored => {
            state.pages.events_changed();
            state.metrics.events_stored(kinds.into_iter());
            Ok(json_text(answer).into_response())
        }
        Ingested::Replayed { request_sha256: first, response } => {
            if first != request_sha256 {
                return Err(ApiError::invalid(
                    "Idempotency-Key",
                    "this key was used for a request with another body",
                ));
            }
            state.metrics.batch_replayed();
            let mut r = json_text(response).into_response();
            r.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(r)
        }
    }
}

/// 422 naming the first event whose item is not in the catalog.
async fn check_items_exist(state: &AppState, events: &[NewEvent]) -> ApiResult<()> {
    let mut unknown = state.items.unknown(events.iter().map(|e| e.item_id.as_str()));
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort_unstable();
    unknown.dedup();
    let found = state.store.existing_items(&unknown).await?;
    state.items.extend(found.iter().cloned());
    if let Some((i, e)) = events
        .iter()
        .enumerate()
        .find(|(_, e)| unknown.contains(&e.item_id.as_str()) && !found.contains(&e.item_id))
    {
        return Err(ApiError::invalid(
            format!("events[{i}].item_id"),
            format!("unknown item `{}`: add it with PUT /v1/items first", e.item_id),
        ));
    }
    Ok(())
}

fn json_text(body: String) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body)
}
