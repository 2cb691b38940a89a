//! Published models, for browsers and CDNs.
//!
//! * `GET /v1/models/current` — the live manifest (`Cache-Control: no-cache`: revalidate with
//!   its ETag, a cheap 304 while the model is unchanged);
//! * `GET /v1/models/{version}/{file}` — a bundle file; immutable: `Cache-Control: public,
//!   max-age=31536000, immutable`, `ETag: "<sha256>"` (the manifest's checksum), 304 on a
//!   matching `If-None-Match`;
//! * `GET /v1/models/{version}/vectors?ids=a,b,c` — item vectors of that version's item
//!   encoder for a page of candidates (at most 1000 ids), so a browser that runs the session
//!   encoder only can score a page without a request per click. Immutable as well (the
//!   answer depends on the version and the ids only); ids the model does not know are listed
//!   in `missing` (give those items content and let the engine encode them instead).
//! * `GET /v1/models` — published versions, newest first, and which one is live.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sessionrank_core::bundle::MANIFEST;
use sessionrank_core::features::item_features;
use sessionrank_core::reranker::{MAX_CANDIDATES, read_f32};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let live = state.models.current_version();
    let versions: Vec<Value> = state
        .store
        .models()
        .await?
        .into_iter()
        .map(|m| json!({"version": m.version, "created_at": m.created_at, "published_at": m.published_at, "live": Some(&m.version) == live.as_ref()}))
        .collect();
    Ok(Json(json!({"current": live, "versions": versions})))
}

pub async fn current(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let model = state.models.current().ok_or_else(|| ApiError::NotFound("no model has been published yet".into()))?;
    Ok(cached(&headers, model.manifest_bytes.clone(), "application/json", &model.manifest_sha256, "no-cache"))
}

pub async fn file(State(state): State<AppState>, Path((version, file)): Path<(String, String)>, headers: HeaderMap) -> ApiResult<Response> {
    let model = state.models.get(&state.store, &version).await?;
    let not_found = || ApiError::NotFound(format!("model {version} has no file `{file}`"));
    if file == MANIFEST {
        return Ok(cached(&headers, model.manifest_bytes.clone(), "application/json", &model.manifest_sha256, IMMUTABLE));
    }
    let entry = model.manifest.files.get(&file).ok_or_else(not_found)?;
    let bytes = model.files.get(&file).ok_or_else(not_found)?.clone();
    Ok(cached(&headers, bytes, content_type(&file), &entry.sha256, IMMUTABLE))
}

fn content_type(file: &str) -> &'static str {
    if file.ends_with(".json") { "application/json" } else { "application/octet-stream" }
}

/// A response with `ETag` and `Cache-Control`, or a 304 when `If-None-Match` matches.
pub fn cached(headers: &HeaderMap, body: bytes::Bytes, content_type: &'static str, sha256: &str, cache_control: &'static str) -> Response {
    let etag = format!("\"{sha256}\"");
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag);
    let mut response = if matches { StatusCode::NOT_MODIFIED.into_response() } else { Response::new(Body::from(body)) };
    let h = response.headers_mut();
    if !matches {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    response
}

#[derive(Debug, Deserialize)]
pub struct VectorsQuery {
    ids: Option<String>,
}

#[derive(Debug, Serialize)]
struct ItemVector {
    item_id: String,
    vector: Vec<f32>,
}

pub async fn vectors(
    State(state): State<AppState>,
    Path(version): Path<String>,
    query: Result<Query<VectorsQuery>, QueryRejection>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(Some("ids".into()), e.body_text()))?;
    let raw = query.ids.ok_or_else(|| ApiError::invalid("ids", "give ids=a,b,c"))?;
    let mut ids: Vec<String> = Vec::new();
    for id in raw.split(',').map(str::trim) {
        if id.is_empty() {
            return Err(ApiError::invalid("ids", "empty item id"));
        }
        if !ids.iter().any(|x| x == id) {
            ids.push(id.to_string());
        }
    }
    if ids.len() > MAX_CANDIDATES {
        return Err(ApiError::invalid("ids", format!("{} ids; at most {MAX_CANDIDATES} per request", ids.len())));
    }
    let model = state.models.get(&state.store, &version).await?;
    let body = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<u8>> {
        let engine = model.engine()?;
        let encoder = engine.encoder();
        let mut known = Vec::new();
        let mut missing = Vec::new();
        for id in ids {
            match encoder.item_row(&id).and_then(|r| encoder.known(r)) {
                Some(enc) => known.push((id, enc.clone())),
                None => missing.push(id),
            }
        }
        let d = engine.model_dim();
        let mut vectors = Vec::with_capacity(known.len());
        if !known.is_empty() {
            let features = item_features(known.iter().map(|(_, e)| e), encoder.max_tokens, engine.device());
            let table = read_f32(engine.model().item_vectors(features))?; // [1 + known, d], row 0 = padding
            for (i, (id, _)) in known.into_iter().enumerate() {
                let row = table.get((i + 1) * d..(i + 2) * d).ok_or_else(|| anyhow::anyhow!("item table too short"))?;
                vectors.push(ItemVector { item_id: id, vector: row.to_vec() });
            }
        }
        let v = json!({"model_version": model.version(), "dim": d, "vectors": vectors, "missing": missing});
        Ok(serde_json::to_vec(&v)?)
    })
    .await
    .map_err(ApiError::internal)??;
    let sha = sessionrank_core::bundle::sha256_hex(&body);
    Ok(cached(&headers, body.into(), "application/json", &sha, IMMUTABLE))
}
