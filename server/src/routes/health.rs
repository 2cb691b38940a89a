//! Operations: `/healthz` (alive: the database answers), `/readyz` (ready for traffic: the
//! database answers and a model is live), `/metrics` (Prometheus text), `/openapi.json`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::AppState;

/// How long a failed ingest (database unavailable) keeps an instance out of rotation unless
/// another ingest succeeds first.
const WRITE_TROUBLE_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// 200 when the database answers; 503 otherwise. Reports the live model (none is not an
/// error: a fresh installation is healthy before its first model).
pub async fn healthz(State(state): State<AppState>) -> Response {
    let model = state.models.current_version();
    match state.store.ping().await {
        Ok(()) => Json(json!({"status": "ok", "model_version": model})).into_response(),
        Err(e) => {
            tracing::error!("health check: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "model_version": model})),
            )
                .into_response()
        }
    }
}

/// 200 when the database takes a write and a model is live, 503 naming what is missing
/// otherwise: a load balancer sends shoppers only to instances that can serve candidate
/// vectors, browser bundles and ingest (a fresh installation is alive, `/healthz`, before it
/// is ready). Once the database is back the next check says ready: nothing needs a restart.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let model = state.models.current_version();
    // A write, not only `SELECT 1`: a full disk or a database locked by another process
    // still answers reads while every ingest fails; and a disk with room for this one row
    // may still refuse every batch, which the last ingest's failure says (for 30 s, or until
    // an ingest succeeds).
    let store = state.store.probe_write().await;
    if let Err(e) = &store {
        tracing::error!("readiness check: {e}");
    }
    let trouble = match &store {
        Ok(()) => state.store.write_trouble(WRITE_TROUBLE_FOR).map(Some),
        Err(e) => Some(e.unavailable()),
    };
    let mut missing = Vec::new();
    match trouble {
        None => {}
        Some(Some("full")) => missing.push("the database cannot grow (disk full)"),
        Some(Some("read-only")) => missing.push("the database is read-only"),
        Some(Some("locked")) => missing.push("the database is locked by another process"),
        Some(_) => missing.push("the database does not answer"),
    }
    if model.is_none() {
        missing.push("no model is live");
    }
    if state.jobs.is_stopping() {
        missing.push("shutting down");
    }
    if missing.is_empty() {
        Json(json!({"status": "ready", "model_version": model})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "model_version": model, "reasons": missing})),
        )
            .into_response()
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let model = state.models.current_version();
    let running = state.jobs.running();
    let text =
        state.metrics.render(model.as_deref(), running.as_ref().map(|(id, p)| (id.as_str(), *p)));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], crate::openapi::SPEC).into_response()
}
