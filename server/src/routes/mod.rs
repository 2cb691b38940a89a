//! The HTTP API. [`app`] builds the router; tests drive it with `tower::ServiceExt::oneshot`.
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/events` | a batch of events (idempotent with `Idempotency-Key`; ingest key, scope `events`) |
//! | `PUT /v1/items` | catalog upsert (ingest key, scope `items`) |
//! | `GET /v1/candidates?limit=N` | a popularity-ordered candidate page (upstream order for shops without their own), each item with its vector from the live model |
//! | `GET /v1/models`, `/v1/models/current`, `/v1/models/{version}/{file}`, `/v1/models/{version}/vectors` (GET `?ids=`, POST `{"ids": […]}`) | published models (full bundles) and item vectors |
//! | `GET /v1/models/current/browser`, `/v1/models/{version}/browser/{file}` | browser bundles: what a shopper's browser downloads |
//! | `POST /admin/retrain`, `GET /admin/jobs/{id}`, `POST /admin/models/{version}/activate`, `GET /admin/stats` | operator API (bearer token) |
//! | `POST /admin/models[?activate=true]` | publish a bundle trained elsewhere: one tar archive (`sessionrank publish`; bearer token) |
//! | `DELETE /v1/items/{id}` | withdraw an item from the candidate pages (scope `items`) |
//! | `DELETE /v1/sessions/{id}` | erase a session's events (scope `events`) |
//! | `GET /healthz`, `/readyz`, `/metrics`, `/openapi.json` | operations |
//!
//! Everything else is served from the demo page's directory when one is configured.

mod admin;
mod auth;
mod bodies;
mod candidates;
mod events;
mod health;
mod items;
mod models;
mod publish;
mod security;
mod sessions;

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::{StatusCode, Uri, header};
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, post, put};
use serde::de::DeserializeOwned;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The whole service, in three parts with their own gates:
///
/// * **public** (any browser; CORS for the configured origins): candidate pages, model files
///   and manifests, item vectors;
/// * **shop back end** (an ingest key with the route's scope): events and session erasure
///   (`events`), items and their withdrawal (`items`);
/// * **operator** (the admin bearer token): retraining, jobs, activation, stats; and the
///   probes (`/healthz`, `/readyz`, `/metrics`, `/openapi.json`), open but meant to stay
///   behind the proxy.
pub fn app(state: AppState) -> Router {
    let admin = Router::new()
        .route("/admin/retrain", post(admin::retrain))
        .route("/admin/jobs/{id}", get(admin::job))
        .route("/admin/models", post(publish::publish))
        .route("/admin/models/{version}/activate", post(admin::activate))
        .route("/admin/stats", get(admin::stats))
        .route_layer(from_fn_with_state(state.clone(), admin::require_token));
    let events = Router::new()
        .route("/v1/events", post(events::ingest))
        .route("/v1/sessions/{id}", delete(sessions::erase))
        .route_layer(from_fn_with_state(state.clone(), auth::require_events));
    let items = Router::new()
        .route("/v1/items", put(items::upsert))
        .route("/v1/items/{id}", delete(items::withdraw))
        .route_layer(from_fn_with_state(state.clone(), auth::require_items));
    let mut public = Router::new()
        .route("/v1/candidates", get(candidates::popular))
        .route("/v1/models", get(models::list))
        .route("/v1/models/current", get(models::current))
        .route("/v1/models/current/browser", get(models::current_browser))
        .route("/v1/models/{version}/vectors", get(models::vectors).post(models::vectors_post))
        .route("/v1/models/{version}/browser/{file}", get(models::browser_file))
        .route("/v1/models/{version}/{file}", get(models::file));
    if let Some(cors) = security::cors(&state.config.cors_origins) {
        public = public.layer(cors);
    }
    let probes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(health::openapi));
    let router = public
        .merge(events)
        .merge(items)
        .merge(probes)
        .merge(admin)
        .route_layer(from_fn_with_state(state.metrics.clone(), crate::metrics::track));
    let router = match state.config.web_dir.clone().filter(|d| d.is_dir()) {
        Some(dir) => {
            let (name, value) = security::csp_header();
            let pages = tower::ServiceBuilder::new()
                .layer(SetResponseHeaderLayer::if_not_present(name, value))
                .service(
                    ServeDir::new(dir)
                        .fallback(axum::routing::any(not_found).with_state(state.clone())),
                );
            router.fallback_service(pages)
        }
        None => router.fallback(not_found),
    };
    let timeout = state.config.request_timeout;
    router
        .layer(DefaultBodyLimit::max(state.config.body_limit))
        .layer(GlobalConcurrencyLimitLayer::new(state.config.concurrency_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout.max(Duration::from_millis(1)),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            security::nosniff(),
        ))
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION, header::COOKIE]))
        .layer(CatchPanicLayer::new())
        .with_state(state)
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

/// A JSON request body, still as bytes: a wrong `Content-Type` and an oversize body are
/// rejected here in the API's error format; [`parse_json`] does the rest. `MAX` is the
/// route's own limit in bytes (0: the configured `body_limit_bytes`; never above it): a
/// declared `Content-Length` over it is refused before anything is read, a body that grows
/// past it as soon as it does.
pub struct JsonBody<const MAX: usize = 0>(pub Bytes);

impl<const MAX: usize> FromRequest<AppState> for JsonBody<MAX> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let content_type =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if mime != "application/json" && !mime.ends_with("+json") {
            return Err(ApiError::UnsupportedMediaType);
        }
        let limit =
            if MAX == 0 { state.config.body_limit } else { MAX.min(state.config.body_limit) };
        read_limited(req, limit).await.map(Self)
    }
}

/// A request's body, at most `limit` bytes: a declared `Content-Length` over it is refused
/// before anything is read, a body that grows past it as soon as it does (413 either way).
pub(crate) async fn read_limited(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::TooLarge { limit });
    }
    match axum::body::to_bytes(req.into_body(), limit).await {
        Ok(bytes) => Ok(bytes),
        Err(e) if is_length_limit(&e) => Err(ApiError::TooLarge { limit }),
        Err(e) => Err(ApiError::bad_request(Some("body".into()), format!("reading the body: {e}"))),
    }
}

/// Whether reading a body failed on its length limit.
pub(crate) fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Deserialize a body, naming the JSON path of the first problem: malformed JSON is a 400,
/// a well-formed document of the wrong shape (wrong type, missing or unknown field) a 422.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    bodies::parse_json(bytes).map_err(ApiError::from)
}

impl From<bodies::BodyError> for ApiError {
    fn from(e: bodies::BodyError) -> Self {
        match e {
            bodies::BodyError::Malformed { field, message } => {
                ApiError::bad_request(Some(field), message)
            }
            bodies::BodyError::Invalid { field, message } => ApiError::invalid(field, message),
        }
    }
}
