//! Data lifecycle: a withdrawn item leaves the candidate pages (and a PUT brings it back);
//! erasure removes a session's events; retention deletes old events; the schema records its
//! migrations; `/readyz` says whether an instance can take traffic. SQLite here, PostgreSQL
//! through [`crate::postgres`].

use axum::http::StatusCode;
use serde_json::json;
use sessionrank_server::{AppState, Config, app};

use crate::common::*;

async fn sqlite_state(configure: impl FnOnce(&mut Config)) -> (tempfile::TempDir, AppState) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    configure(&mut config);
    (dir, open(config).await)
}

fn page_ids(r: &Resp) -> Vec<String> {
    r.json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|it| it["id"].as_str().expect("id").to_string())
        .collect()
}

pub async fn withdrawn_items_leave_the_candidate_pages(state: AppState) {
    let app = app(state);
    send_json(&app, "PUT", "/v1/items", &items_json(10)).await;
    send_json(&app, "POST", "/v1/events", &events_json(20, 10, 0)).await;
    let before = page_ids(&call(&app, "GET", "/v1/candidates?limit=10", &[], "").await);
    assert_eq!(before.len(), 10);
    let gone = before[0].clone();
    let second = before[1].clone();
    for id in [&gone, &second] {
        let r = call(&app, "DELETE", &format!("/v1/items/{id}"), &[], "").await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    let after = page_ids(&call(&app, "GET", "/v1/candidates?limit=10", &[], "").await);
    assert_eq!(after.len(), 8, "{after:?}");
    assert!(!after.contains(&gone) && !after.contains(&second), "{after:?}");
    let r = call(&app, "DELETE", "/v1/items/nope", &[], "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Still in the catalog: events for it are accepted, and a PUT brings it back.
    let one = json!({"events": [
        {"session_id": "x", "item_id": gone, "type": "view", "timestamp": 1_700_000_000}
    ]});
    assert_eq!(send_json(&app, "POST", "/v1/events", &one).await.status, StatusCode::OK);
    let back = json!({"items": [{"id": gone, "text": "back in stock"}]});
    assert_eq!(send_json(&app, "PUT", "/v1/items", &back).await.status, StatusCode::OK);
    let again = page_ids(&call(&app, "GET", "/v1/candidates?limit=10", &[], "").await);
    assert!(again.contains(&gone), "{again:?}");
    // Withdrawing is the catalog's business: an events-only key may not.
    let r = call(
        &app,
        "DELETE",
        "/v1/items/i1",
        &[("authorization", "Bearer nope-nope-nope-nope")],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

pub async fn erasure_removes_the_sessions_events(state: AppState) {
    let store = state.store.clone();
    let app = app(state);
    send_json(&app, "PUT", "/v1/items", &items_json(10)).await;
    send_json(&app, "POST", "/v1/events", &events_json(3, 10, 0)).await;
    assert_eq!(store.session_events("s1").await.expect("count"), 5);
    let r = call(&app, "DELETE", "/v1/sessions/s1", &[], "").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json(), json!({"session_id": "s1", "deleted_events": 5}));
    assert_eq!(store.session_events("s1").await.expect("count"), 0);
    assert_eq!(stats(&app).await["events"], 10, "the other sessions stay");
    let r = call(&app, "DELETE", "/v1/sessions/s1", &[], "").await;
    assert_eq!(r.json()["deleted_events"], 0, "idempotent");
    let r = call_raw(&app, "DELETE", "/v1/sessions/s2", &[], "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "erasure needs the events scope");
    assert_eq!(store.session_events("s2").await.expect("count"), 5);
}

pub async fn retention_deletes_old_events(state: AppState) {
    let app = app(state.clone());
    send_json(&app, "PUT", "/v1/items", &items_json(10)).await;
    let now = sessionrank_server::store::now_s();
    let event = |session: &str, timestamp: i64| {
        let mut e = json!({"item_id": "i1", "type": "view", "timestamp": timestamp});
        e["session_id"] = session.into();
        e
    };
    let body = json!({"events": [
        event("old", now - 40 * 86_400),
        event("old", now - 31 * 86_400),
        event("new", now - 86_400),
    ]});
    assert_eq!(send_json(&app, "POST", "/v1/events", &body).await.status, StatusCode::OK);
    let deleted = sessionrank_server::serve::prune_expired_events(&state).await.expect("prune");
    assert_eq!(deleted, 2);
    assert_eq!(state.store.session_events("new").await.expect("count"), 1);
    assert_eq!(
        state.store.schema_version().await.expect("version"),
        sessionrank_server::store::SCHEMA_VERSION
    );
}

pub fn thirty_days(c: &mut Config) {
    c.event_retention_days = Some(30);
}

#[tokio::test]
async fn withdrawn_items_leave_the_candidate_pages_sqlite() {
    let (_dir, state) = sqlite_state(|_| {}).await;
    withdrawn_items_leave_the_candidate_pages(state).await;
}

#[tokio::test]
async fn erasure_removes_the_sessions_events_sqlite() {
    let (_dir, state) = sqlite_state(|_| {}).await;
    erasure_removes_the_sessions_events(state).await;
}

#[tokio::test]
async fn retention_deletes_old_events_sqlite() {
    let (_dir, state) = sqlite_state(thirty_days).await;
    retention_deletes_old_events(state).await;
}

#[tokio::test]
async fn without_retention_nothing_is_pruned() {
    let (_dir, state) = sqlite_state(|_| {}).await;
    let app = app(state.clone());
    send_json(&app, "PUT", "/v1/items", &items_json(10)).await;
    send_json(&app, "POST", "/v1/events", &events_json(2, 10, 0)).await;
    assert_eq!(sessionrank_server::serve::prune_expired_events(&state).await.expect("prune"), 0);
    assert_eq!(stats(&app).await["events"], 10);
}

/// A database of the first layout (before the migrations) is migrated once on open.
#[tokio::test]
async fn an_older_database_is_migrated_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sessionrank_server::config::sqlite_url(dir.path());
    {
        let store = sessionrank_server::store::Store::open(&url).await.expect("opens");
        store.execute_raw("DROP INDEX events_by_session").await.expect("drop");
        store.execute_raw("DROP INDEX events_by_time").await.expect("drop");
        store.execute_raw("ALTER TABLE items DROP COLUMN available").await.expect("drop");
        store.execute_raw("DROP TABLE model_files").await.expect("drop");
        store.execute_raw("ALTER TABLE jobs DROP COLUMN owner").await.expect("drop");
        store.execute_raw("DROP TABLE schema_migrations").await.expect("drop");
    }
    for _ in 0..2 {
        let store = sessionrank_server::store::Store::open(&url).await.expect("migrates");
        assert_eq!(
            store.schema_version().await.expect("version"),
            sessionrank_server::store::SCHEMA_VERSION
        );
    }
}

#[tokio::test]
async fn readyz_needs_the_database_and_a_live_model() {
    let (_dir, state) = sqlite_state(|_| {}).await;
    let app = app(state.clone());
    let r = call(&app, "GET", "/readyz", &[], "").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["reasons"], json!(["no model is live"]));
    assert_eq!(call(&app, "GET", "/healthz", &[], "").await.status, StatusCode::OK, "alive");
    state.models.publish(tiny_bundle("v1"), true).await.expect("publish");
    let r = call(&app, "GET", "/readyz", &[], "").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json()["model_version"], "v1");
}
