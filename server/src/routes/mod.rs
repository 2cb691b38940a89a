//! The HTTP API. [`app`] builds the router; tests drive it with `tower::ServiceExt::oneshot`.
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/events` | a batch of events (idempotent with `Idempotency-Key`) |
//! | `PUT /v1/items` | catalog upsert |
//! | `GET /v1/candidates?limit=N` | a popularity-ordered candidate page (upstream order for shops without their own), each item with its vector from the live model |
//! | `GET /v1/models`, `/v1/models/current`, `/v1/models/{version}/{file}`, `/v1/models/{version}/vectors` (GET `?ids=`, POST `{"ids": […]}`) | published models (full bundles) and item vectors |
//! | `GET /v1/models/current/browser`, `/v1/models/{version}/browser/{file}` | browser bundles: what a shopper's browser downloads |
//! | `POST /admin/retrain`, `GET /admin/jobs/{id}`, `POST /admin/models/{version}/activate`, `GET /admin/stats` | operator API (bearer token) |
//! | `GET /healthz`, `/metrics`, `/openapi.json` | operations |
//!
//! Everything else is served from the demo page's directory when one is configured.

mod admin;
mod candidates;
mod events;
mod health;
mod items;
mod models;

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::{StatusCode, Uri, header};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post, put};
use serde::de::DeserializeOwned;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::services::ServeDir;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The whole service.
pub fn app(state: AppState) -> Router {
    let admin = Router::new()
        .route("/admin/retrain", post(admin::retrain))
        .route("/admin/jobs/{id}", get(admin::job))
        .route("/admin/models/{version}/activate", post(admin::activate))
        .route("/admin/stats", get(admin::stats))
        .route_layer(from_fn_with_state(state.clone(), admin::require_token));
    let api = Router::new()
        .route("/v1/events", post(events::ingest))
        .route("/v1/items", put(items::upsert))
        .route("/v1/candidates", get(candidates::popular))
        .route("/v1/models", get(models::list))
        .route("/v1/models/current", get(models::current))
        .route("/v1/models/current/browser", get(models::current_browser))
        .route("/v1/models/{version}/vectors", get(models::vectors).post(models::vectors_post))
        .route("/v1/models/{version}/browser/{file}", get(models::browser_file))
        .route("/v1/models/{version}/{file}", get(models::file))
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(health::openapi));
    let router = api
        .merge(admin)
        .route_layer(from_fn_with_state(state.metrics.clone(), crate::metrics::track));
    let router = match state.config.web_dir.clone().filter(|d| d.is_dir()) {
        Some(dir) => router.fallback_service(
            ServeDir::new(dir).fallback(axum::routing::any(not_found).with_state(state.clone())),
        ),
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
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION, header::COOKIE]))
        .layer(CatchPanicLayer::new())
        .with_state(state)
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

/// A JSON request body, still as bytes: a wrong `Content-Type` and an oversize body are
/// rejected here in the API's error format; [`parse_json`] does the rest.
pub struct JsonBody(pub Bytes);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let content_type =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if mime != "application/json" && !mime.ends_with("+json") {
            return Err(ApiError::UnsupportedMediaType);
        }
        match Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(Self(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::TooLarge { limit: state.config.body_limit })
            }
            Err(rejection) => {
                Err(ApiError::bad_request(Some("body".into()), rejection.body_text()))
            }
        }
    }
}

/// Deserialize a body, naming the JSON path of the first problem: malformed JSON is a 400,
/// a well-formed document of the wrong shape (wrong type, missing or unknown field) a 422.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        let field = field_of(&path, &message);
        match inner.classify() {
            serde_json::error::Category::Data => {
                ApiError::invalid(field.unwrap_or_else(|| "body".into()), message)
            }
            _ => ApiError::bad_request(
                field.or_else(|| Some("body".into())),
                format!("malformed JSON: {message}"),
            ),
        }
    })?;
    de.end()
        .map_err(|e| ApiError::bad_request(Some("body".into()), format!("malformed JSON: {e}")))?;
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
    use super::field_of;

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
}
