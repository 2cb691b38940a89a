//! The operator API. Every route needs `Authorization: Bearer <token>` (401 otherwise); with
//! no token configured the whole admin API answers 403. The token is compared in constant
//! time and never logged (the trace layer marks `Authorization` sensitive).

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::job::Job;
use crate::retrain;
use crate::state::AppState;

pub async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let ok = match (state.check_admin_token(given.unwrap_or("")), given) {
        (None, _) => return ApiError::AdminDisabled.into_response(),
        (Some(ok), Some(_)) => ok,
        (Some(_), None) => false,
    };
    if !ok {
        return ApiError::Unauthorized.into_response();
    }
    next.run(req).await
}

/// `POST /admin/retrain`: 202 with the new job, or 409 with the running job's id.
pub async fn retrain(State(state): State<AppState>) -> ApiResult<Response> {
    let job = retrain::start(&state).await?;
    let mut response = (StatusCode::ACCEPTED, Json(&job)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/admin/jobs/{}", job.id)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// `GET /admin/jobs/{id}`.
pub async fn job(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Job>> {
    match state.store.job::<Job>(&id).await? {
        Some(job) => Ok(Json(job)),
        None => Err(ApiError::NotFound(format!("no job `{id}`"))),
    }
}

/// `POST /admin/models/{version}/activate`: make a published version live.
pub async fn activate(
    State(state): State<AppState>,
    Path(version): Path<String>,
) -> ApiResult<Json<Value>> {
    let model = state.models.activate(&version).await?;
    Ok(Json(json!({"model_version": model.version(), "manifest": model.manifest()})))
}

/// `GET /admin/stats`: stored counts, the live version here, the running job (whichever
/// instance runs it; `running_here` when this one does), and this instance's name.
pub async fn stats(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let stats = state.store.stats().await?;
    Ok(Json(json!({
        "events": stats.events,
        "items": stats.items,
        "models": stats.models,
        "live_model": state.models.current_version(),
        "running_job": state.store.running_job_id().await?,
        "running_here": state.jobs.running().map(|(id, _)| id),
        "instance": state.instance,
        "model_loads": state.models.loads(),
    })))
}
