//! `DELETE /v1/sessions/{id}`: erase a shopper's session — every stored event of that session
//! id, in one statement (scope `events`: the back end that sent them). Models trained before
//! keep what they learned in aggregate (no event is stored in a bundle); the next retraining
//! no longer sees the session. Answers how many events were deleted (0 for an unknown id:
//! erasure is idempotent).

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::events::check_id;
use crate::error::ApiResult;
use crate::state::AppState;

pub async fn erase(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    check_id(&id, || "session_id".into())?;
    let deleted = state.store.delete_session(&id).await?;
    state.pages.events_changed();
    tracing::info!("erased a session: {deleted} events");
    Ok(Json(json!({"session_id": id, "deleted_events": deleted})))
}
