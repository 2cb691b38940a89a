//! The one error type of the HTTP API.
//!
//! Client errors carry a message and, where one input is at fault, the JSON path of that input
//! (`events[3].item_id`), so a shop's engineer can fix the request without reading our logs:
//!
//! ```json
//! {"error": "unknown event type `like` (expected view, click, add_to_cart or purchase)", "field": "events[3].type"}
//! ```
//!
//! Internal errors are logged with their cause and answered with a generic message: storage
//! paths, SQL and stack traces never reach a client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// What a 503 asks a client to wait before retrying.
pub const RETRY_AFTER_SECONDS: u64 = 2;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request cannot be read: malformed JSON, a bad header (400).
    #[error("{message}")]
    BadRequest { field: Option<String>, message: String },
    /// The request is well-formed but a value is unacceptable: wrong type, unknown event type,
    /// negative price, unknown item id (422).
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// The body is larger than the configured limit (413).
    #[error("the request body is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// The body is not `application/json` (415).
    #[error("expected a body with `Content-Type: application/json`")]
    UnsupportedMediaType,
    /// A body of another media type than the route's own (415), e.g. `application/x-tar`.
    #[error("expected a body with `Content-Type: {0}`")]
    ExpectedMediaType(&'static str),
    /// An admin route without the right bearer token (401).
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// A known ingest key without the scope this route needs (403).
    #[error("{0}")]
    Forbidden(String),
    /// Admin routes are disabled because no admin token is configured (403).
    #[error("the admin API is disabled: set SESSIONRANK_ADMIN_TOKEN to enable it")]
    AdminDisabled,
    /// No such resource (404).
    #[error("{0}")]
    NotFound(String),
    /// The resource is busy, e.g. a retraining job already runs (409, with that job's id).
    #[error("{message}")]
    Conflict { message: String, job_id: Option<String> },
    /// The database cannot take the request now (unreachable, locked, full): 503 with
    /// `Retry-After`. Nothing of the request was stored, so the client retries it as it is
    /// (with the same `Idempotency-Key`, if it sent one); `/readyz` says the same meanwhile.
    #[error("the database is unavailable ({cause}); nothing was stored, retry later")]
    Unavailable { cause: &'static str },
    /// Anything else: logged, answered with a generic 500.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::Internal(anyhow::anyhow!("a background task failed: {e}"))
    }
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), message: message.into() }
    }

    pub fn bad_request(field: Option<String>, message: impl Into<String>) -> Self {
        Self::BadRequest { field, message: message.into() }
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType | Self::ExpectedMediaType(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::AdminDisabled | Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e.unavailable() {
            Some(cause) => {
                // The cause's details (paths, SQL) stay in the log, as for a 500.
                tracing::warn!("database unavailable: {e}");
                Self::Unavailable { cause }
            }
            None => Self::Internal(e.into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            Self::Internal(e) => {
                // `{:#}` prints the whole context chain; only the log sees it.
                tracing::error!("internal error: {e:#}");
                json!({"error": "internal server error"})
            }
            Self::BadRequest { field: Some(field), message } | Self::Invalid { field, message } => {
                json!({"error": message, "field": field})
            }
            Self::TooLarge { .. } => json!({"error": self.to_string(), "field": "body"}),
            Self::Conflict { message, job_id } => json!({"error": message, "job_id": job_id}),
            Self::Unavailable { cause } => json!({
                "error": self.to_string(),
                "unavailable": cause,
                "retry_after_seconds": RETRY_AFTER_SECONDS,
            }),
            other => json!({"error": other.to_string()}),
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
