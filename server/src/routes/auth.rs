//! The write routes' gate: `Authorization: Bearer <ingest key>` with the route's scope
//! ([`crate::auth`]). Checked before the body is read, so a refused write costs no parsing and
//! stores nothing: 401 without a key or with one that is not configured, 403 with a key that
//! lacks the scope. The key never reaches a log (the trace layer marks `Authorization`
//! sensitive); the key's name does, on a refusal for a wrong scope.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::{Denied, Scope};
use crate::error::ApiError;
use crate::state::AppState;

/// The bearer token of a request, if it has one.
pub fn bearer(req: &Request) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

pub async fn require_events(State(state): State<AppState>, req: Request, next: Next) -> Response {
    require(&state, Scope::Events, req, next).await
}

pub async fn require_items(State(state): State<AppState>, req: Request, next: Next) -> Response {
    require(&state, Scope::Items, req, next).await
}

async fn require(state: &AppState, scope: Scope, req: Request, next: Next) -> Response {
    match state.config.ingest_keys.check(bearer(&req), scope) {
        Ok(_) => next.run(req).await,
        Err(Denied::Unauthenticated) => ApiError::Unauthorized.into_response(),
        Err(Denied::WrongScope { name }) => {
            let scope = scope.as_str();
            tracing::warn!(key = %name, "a write refused: the key lacks the `{scope}` scope");
            ApiError::Forbidden(format!(
                "the ingest key `{name}` does not have the `{scope}` scope"
            ))
            .into_response()
        }
    }
}
