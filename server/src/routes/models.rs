//! Published models, for browsers and CDNs.
//!
//! Every version has a full bundle and a browser bundle (same `model_version`; see
//! `version.rs`). A shopper's browser needs only the browser bundle plus the item vectors
//! that come with its candidate page (`GET /v1/candidates`, or `vectors` below).
//!
//! * `GET /v1/models/current` — the live full manifest, and `GET /v1/models/current/browser` —
//!   the live browser manifest (`Cache-Control: no-cache`: revalidate with the ETag, a cheap
//!   304 while the model is unchanged);
//! * `GET /v1/models/{version}/{file}` — a file of the full bundle, and
//!   `GET /v1/models/{version}/browser/{file}` — a file of the browser bundle; immutable:
//!   `Cache-Control: public, max-age=31536000, immutable`, `ETag: "<sha256>"` (the manifest's
//!   checksum), 304 on a matching `If-None-Match`;
//! * `GET /v1/models/{version}/vectors?ids=a,b,c` — item vectors of that version's item
//!   encoder for a page of candidates (at most 1000 ids), so a browser running the browser
//!   bundle can score a shop's own page. Ids the model knows are encoded from id + trained
//!   content; ids it does not know but the catalog has are encoded from their stored content
//!   (listed in `from_content`); ids neither knows are listed in `missing`. When every id is
//!   known the answer depends on the version and the ids only and is immutable; otherwise it
//!   depends on the catalog too and may be cached for a minute.
//! * `POST /v1/models/{version}/vectors` with `{"ids": [...]}` — the same answer for a list too
//!   long for a URL (a shop's own search results, up to 1000 ids; `no-store`; body at most
//!   512 KiB).
//!
//! Both refuse a list of more than 5000 entries (repeats included) before any work: the GET
//! by counting separators in the raw query, the POST by stopping its parse at entry 5001.
//! * `GET /v1/models` — published versions, newest first, and which one is live.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sessionrank_core::ItemContent;
use sessionrank_core::bundle::MANIFEST;
use sessionrank_core::reranker::MAX_CANDIDATES;

use super::{JsonBody, parse_json};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::version::ServedFiles;

pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Answers that depend on the catalog as well as the version (it changes as items arrive).
pub const ONE_MINUTE: &str = "public, max-age=60";

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

/// `GET /v1/models/current`: the live full manifest.
pub async fn current(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let model = state
        .models
        .current()
        .ok_or_else(|| ApiError::NotFound("no model has been published yet".into()))?;
    Ok(cached(
        &headers,
        model.full.manifest_bytes.clone(),
        "application/json",
        &model.full.manifest_sha256,
        "no-cache",
    ))
}

/// `GET /v1/models/current/browser`: the live browser manifest.
pub async fn current_browser(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let model = state
        .models
        .current()
        .ok_or_else(|| ApiError::NotFound("no model has been published yet".into()))?;
    Ok(cached(
        &headers,
        model.browser.manifest_bytes.clone(),
        "application/json",
        &model.browser.manifest_sha256,
        "no-cache",
    ))
}

/// `GET /v1/models/{version}/{file}`: a file of the full bundle.
pub async fn file(
    State(state): State<AppState>,
    Path((version, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let model = state.models.get(&version).await?;
    serve_file(&model.full, &format!("model {version}"), &file, &headers)
}

/// `GET /v1/models/{version}/browser/{file}`: a file of the browser bundle.
pub async fn browser_file(
    State(state): State<AppState>,
    Path((version, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let model = state.models.get(&version).await?;
    serve_file(&model.browser, &format!("the browser bundle of model {version}"), &file, &headers)
}

/// One immutable file of a bundle, or 404 for a name its manifest does not list.
fn serve_file(
    bundle: &ServedFiles,
    what: &str,
    file: &str,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let not_found = || ApiError::NotFound(format!("{what} has no file `{file}`"));
    if file == MANIFEST {
        return Ok(cached(
            headers,
            bundle.manifest_bytes.clone(),
            "application/json",
            &bundle.manifest_sha256,
            IMMUTABLE,
        ));
    }
    let entry = bundle.manifest.files.get(file).ok_or_else(not_found)?;
    let bytes = bundle.files.get(file).ok_or_else(not_found)?.clone();
    Ok(cached(headers, bytes, content_type(file), &entry.sha256, IMMUTABLE))
}

fn content_type(file: &str) -> &'static str {
    if file.ends_with(".json") { "application/json" } else { "application/octet-stream" }
}

/// A response with `ETag` and `Cache-Control`, or a 304 when `If-None-Match` matches.
pub fn cached(
    headers: &HeaderMap,
    body: bytes::Bytes,
    content_type: &'static str,
    sha256: &str,
    cache_control: &'static str,
) -> Response {
    let etag = format!("\"{sha256}\"");
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag);
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Response::new(Body::from(body))
    };
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

/// Entries of one vectors query, repeats included: a list longer than this is refused by a
/// count before anything is decoded, parsed or looked up (1000 distinct ids is the limit
/// that matters; repeats are allowed up to here).
pub const MAX_ID_ENTRIES: usize = 5 * MAX_CANDIDATES;

/// Body limit of `POST …/vectors`: 1000 ids of up to 256 bytes, with room for repeats.
pub const VECTORS_BODY_LIMIT: usize = 512 << 10;

/// The body of `POST /v1/models/{version}/vectors`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VectorsBody {
    ids: BoundedIds,
}

/// A JSON array of ids whose parsing stops at entry [`MAX_ID_ENTRIES`] + 1.
#[derive(Debug)]
struct BoundedIds(Vec<String>);

impl<'de> Deserialize<'de> for BoundedIds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = BoundedIds;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "an array of at most {MAX_ID_ENTRIES} item ids")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<BoundedIds, A::Error> {
                let mut ids = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_CANDIDATES));
                while let Some(id) = seq.next_element::<String>()? {
                    if ids.len() == MAX_ID_ENTRIES {
                        return Err(serde::de::Error::custom(too_many_ids()));
                    }
                    ids.push(id);
                }
                Ok(BoundedIds(ids))
            }
        }
        d.deserialize_seq(Visitor)
    }
}

fn too_many_ids() -> String {
    format!("more than {MAX_ID_ENTRIES} ids; at most {MAX_CANDIDATES} distinct ones per request")
}

/// 422 when `raw` (a query string, still encoded) holds more than [`MAX_ID_ENTRIES`] ids: a
/// count of separators, so a huge list costs no decoding.
fn check_id_count(raw: &str) -> ApiResult<()> {
    let separators = raw.bytes().filter(|&b| b == b',').count()
        + raw.as_bytes().windows(3).filter(|w| w.eq_ignore_ascii_case(b"%2c")).count();
    if separators >= MAX_ID_ENTRIES {
        return Err(ApiError::invalid("ids", too_many_ids()));
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct ItemVector {
    item_id: String,
    vector: Vec<f32>,
}

/// The `vectors` answer. Serialised from `f32` directly (not through `serde_json::Value`,
/// which widens to `f64`): the shortest text that reads back as the same `f32`.
#[derive(Debug, Serialize)]
struct Vectors<'a> {
    model_version: &'a str,
    dim: usize,
    vectors: Vec<ItemVector>,
    /// Ids the model does not know, encoded from the catalog's content.
    from_content: Vec<String>,
    /// Ids neither the model nor the catalog knows.
    missing: Vec<String>,
}

/// `GET /v1/models/{version}/vectors?ids=a,b,c`.
pub async fn vectors(
    State(state): State<AppState>,
    Path(version): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    check_id_count(uri.query().unwrap_or(""))?;
    let Query(query) = Query::<VectorsQuery>::try_from_uri(&uri)
        .map_err(|e: QueryRejection| ApiError::bad_request(Some("ids".into()), e.body_text()))?;
    let raw = query.ids.ok_or_else(|| ApiError::invalid("ids", "give ids=a,b,c"))?;
    let ids = unique_ids(raw.split(',').map(str::trim), |_| "ids".to_string())?;
    let model = state.models.get(&version).await?;
    let (body, immutable) = encode_vectors(&state, model, ids).await?;
    let sha = sessionrank_core::bundle::sha256_hex(&body);
    Ok(cached(
        &headers,
        body.into(),
        "application/json",
        &sha,
        if immutable { IMMUTABLE } else { ONE_MINUTE },
    ))
}

/// `POST /v1/models/{version}/vectors` with `{"ids": ["a", "b", …]}`: the same answer as the
/// GET, for lists whose ids would not fit in a URL (1000 ids of a shop's own search engine).
/// The version is checked before the body is read, so a stale version costs no parsing. Not
/// cached (`no-store`): a POST answer is not reused by HTTP caches anyway.
pub async fn vectors_post(
    State(state): State<AppState>,
    Path(version): Path<String>,
    JsonBody(body): JsonBody<VECTORS_BODY_LIMIT>,
) -> ApiResult<Response> {
    let model = state.models.get(&version).await?;
    let VectorsBody { ids: BoundedIds(ids) } = parse_json(&body)?;
    let ids = unique_ids(ids.iter().map(|id| id.trim()), |i| format!("ids[{i}]"))?;
    let (body, _) = encode_vectors(&state, model, ids).await?;
    let mut response = Response::new(Body::from(body));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The ids in first-seen order without repeats (a hash set: linear in the list), at most
/// [`MAX_CANDIDATES`] distinct ones; an empty id is refused with `field(position)`.
fn unique_ids<'a>(
    ids: impl Iterator<Item = &'a str>,
    field: impl Fn(usize) -> String,
) -> ApiResult<Vec<String>> {
    let mut seen = std::collections::HashSet::new();
    let mut unique = Vec::new();
    for (i, id) in ids.enumerate() {
        if id.is_empty() {
            return Err(ApiError::invalid(field(i), "empty item id"));
        }
        if seen.insert(id) {
            if unique.len() == MAX_CANDIDATES {
                return Err(ApiError::invalid(
                    "ids",
                    format!(
                        "more than {MAX_CANDIDATES} distinct ids; at most {MAX_CANDIDATES} per request"
                    ),
                ));
            }
            unique.push(id.to_string());
        }
    }
    if unique.is_empty() {
        return Err(ApiError::invalid("ids", "no item ids"));
    }
    Ok(unique)
}

/// The vectors answer as JSON bytes, and whether it is immutable (every id known to the
/// model, so the answer depends on the version and the ids only).
async fn encode_vectors(
    state: &AppState,
    model: std::sync::Arc<crate::version::LoadedModel>,
    ids: Vec<String>,
) -> ApiResult<(Vec<u8>, bool)> {
    // Content for every id the catalog has; the model ignores it for the ids it knows.
    let mut stored =
        state.store.items_by_id(&ids.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    let items: Vec<(String, Option<ItemContent>)> = ids
        .into_iter()
        .map(|id| {
            let content = stored.remove(&id).map(|it| ItemContent {
                text: it.text,
                category: it.category,
                price_level: it.price_level,
            });
            (id, content)
        })
        .collect();
    let answer = tokio::task::spawn_blocking(move || -> anyhow::Result<(Vec<u8>, bool)> {
        let computed = model.item_vectors(&items)?;
        let engine = model.engine()?;
        let mut answer = Vectors {
            model_version: model.version(),
            dim: engine.model_dim(),
            vectors: Vec::new(),
            from_content: Vec::new(),
            missing: Vec::new(),
        };
        for ((id, _), vector) in items.into_iter().zip(computed) {
            match vector {
                None => answer.missing.push(id),
                Some(vector) => {
                    if engine.encoder().item_row(&id).is_none() {
                        answer.from_content.push(id.clone());
                    }
                    answer.vectors.push(ItemVector { item_id: id, vector });
                }
            }
        }
        let immutable = answer.from_content.is_empty() && answer.missing.is_empty();
        Ok((serde_json::to_vec(&answer)?, immutable))
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(answer)
}
