//! Work that must not grow with the stored events: candidate pages ranked from the per-item
//! counts (kept with ingest, erasure and retention) and served from memory, one build at a
//! time; retraining reads a bounded window of recent sessions in pages. SQLite here,
//! PostgreSQL through [`crate::postgres`].

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;
use sessionrank_data::{Catalog, EventKind, Item};
use sessionrank_server::store::{NewEvent, SCHEMA_VERSION, Store, Window};
use sessionrank_server::{AppState, Config, app};

use crate::common::*;

async fn sqlite_state(configure: impl FnOnce(&mut Config)) -> (tempfile::TempDir, AppState) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    configure(&mut config);
    (dir, open(config).await)
}

async fn counts(store: &Store) -> Vec<(String, i64)> {
    store.count_new_events().await.expect("counted");
    store
        .popular_items(100)
        .await
        .expect("ranked")
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(it, n)| (it.id, n))
        .collect()
}

fn event(session: &str, item: &str, timestamp: i64) -> serde_json::Value {
    json!({"session_id": session, "item_id": item, "type": "view", "timestamp": timestamp})
}

/// The counts follow every write of events: ingest (a replay counts nothing), erasure and
/// retention, of events counted already or not yet; the ranking reads them, not the events
/// table.
pub async fn item_counts_follow_ingest_erasure_and_retention(state: AppState) {
    let store = state.store.clone();
    let router = app(state.clone());
    send_json(&router, "PUT", "/v1/items", &items_json(6)).await;
    let now = sessionrank_server::store::now_s();
    let body = json!({"events": [
        event("a", "i1", now), event("a", "i2", now), event("a", "i1", now),
        event("b", "i1", now), event("b", "i3", now),
        event("old", "i2", now - 40 * 86_400), event("old", "i2", now - 40 * 86_400),
    ]});
    for _ in 0..2 {
        let headers = [("idempotency-key", "k1"), ("content-type", "application/json")];
        let r = call(&router, "POST", "/v1/events", &headers, body.to_string()).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    assert_eq!(
        counts(&store).await,
        [("i1".into(), 3), ("i2".into(), 3), ("i3".into(), 1)],
        "most events first, ties in catalog order; the replay stored nothing"
    );
    // Stored and erased before they were counted: never counted.
    let body = json!({"events": [event("c", "i5", now), event("c", "i5", now)]});
    assert_eq!(send_json(&router, "POST", "/v1/events", &body).await.status, StatusCode::OK);
    let r = call(&router, "DELETE", "/v1/sessions/c", &[], "").await;
    assert_eq!(r.json()["deleted_events"], 2);
    let r = call(&router, "DELETE", "/v1/sessions/a", &[], "").await;
    assert_eq!(r.json()["deleted_events"], 3);
    assert_eq!(counts(&store).await, [("i2".into(), 2), ("i1".into(), 1), ("i3".into(), 1)]);
    assert_eq!(store.delete_events_before(now - 30 * 86_400).await.expect("prune"), 2);
    assert_eq!(counts(&store).await, [("i1".into(), 1), ("i3".into(), 1)]);
    // The ranking reads the counts: emptying the events table behind the store's back
    // leaves the page as it was.
    store.execute_raw("DELETE FROM events").await.expect("raw delete");
    assert_eq!(counts(&store).await, [("i1".into(), 1), ("i3".into(), 1)]);
}

/// Concurrent requests for a cold page share one build; the page is then served from memory
/// until the catalog changes (rebuilt at once) or events arrive (refreshed in the background
/// after a second at most).
pub async fn candidate_pages_are_cached_and_built_once(state: AppState) {
    let router = app(state.clone());
    send_json(&router, "PUT", "/v1/items", &items_json(10)).await;
    send_json(&router, "POST", "/v1/events", &events_json(4, 10, 0)).await;
    let builds = state.pages.builds();
    let mut calls = Vec::new();
    for _ in 0..12 {
        let router = router.clone();
        calls.push(tokio::spawn(async move {
            call(&router, "GET", "/v1/candidates?limit=4", &[], "").await
        }));
    }
    let mut bodies = Vec::new();
    for c in calls {
        let r = c.await.expect("task");
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        bodies.push(r.json());
    }
    assert!(bodies.iter().all(|b| *b == bodies[0]), "one page for all");
    assert_eq!(state.pages.builds() - builds, 1, "twelve requests, one build");
    let first = bodies[0]["items"][0]["id"].as_str().expect("id").to_string();

    // New events: the page stays for up to a second, then follows them.
    let more: Vec<_> = (0..5).map(|i| event(&format!("n{i}"), "i9", 1_700_000_000)).collect();
    let r = send_json(&router, "POST", "/v1/events", &json!({"events": more})).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call(&router, "GET", "/v1/candidates?limit=4", &[], "").await;
    assert_eq!(r.json(), bodies[0], "served from memory");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = call(&router, "GET", "/v1/candidates?limit=4", &[], "").await;
    assert_eq!(r.json(), bodies[0], "this request starts the refresh and does not wait for it");
    let mut r = call(&router, "GET", "/v1/candidates?limit=4", &[], "").await;
    for _ in 0..500 {
        if r.json() != bodies[0] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        r = call(&router, "GET", "/v1/candidates?limit=4", &[], "").await;
    }
    assert_eq!(r.json()["items"][0]["id"], "i9", "{:?}", r.json());
    assert_eq!(r.json()["items"][0]["events"], 5);

    // A withdrawn item leaves the page at once.
    let r = call(&router, "DELETE", "/v1/items/i9", &[], "").await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call(&router, "GET", "/v1/candidates?limit=4", &[], "").await;
    assert_eq!(r.json()["items"][0]["id"], first.as_str(), "{:?}", r.json());
    let builds = state.pages.builds();
    call(&router, "GET", "/v1/candidates?limit=4", &[], "").await;
    assert_eq!(state.pages.builds(), builds, "and is cached again");

    // A new live model is another page, with its vectors.
    state.models.publish(tiny_bundle("v-cache"), true).await.expect("publish");
    let r = call(&router, "GET", "/v1/candidates?limit=4", &[], "").await;
    assert_eq!(r.json()["model_version"], "v-cache");
    assert!(r.json()["items"][0]["vector"].is_array());
}

/// 30 sessions of 3 events, session `k` at time `base + 100 k`, stored in that order.
async fn thirty_sessions(store: &Store) -> Catalog {
    let mut catalog = Catalog::new();
    for i in 0..5 {
        catalog.upsert(Item { id: format!("i{i}"), text: format!("item {i}"), ..Item::default() });
    }
    store.upsert_items(catalog.items()).await.expect("items");
    let base = 1_700_000_000;
    for k in 0..30i64 {
        let events = (0..3)
            .map(|j| NewEvent {
                session_id: format!("s{k}"),
                item_id: format!("i{}", (k + j) % 5),
                kind: EventKind::View,
                timestamp: base + 100 * k + j,
            })
            .collect();
        let stored = store.ingest_events(None, String::new(), events, String::new()).await;
        stored.expect("stored");
    }
    catalog
}

/// Retraining's window: the most recent sessions only, each cut to its newest events, read
/// in pages (7 rows here, so every case crosses pages).
pub async fn retraining_reads_a_bounded_window_in_pages(store: Store) {
    let catalog = thirty_sessions(&store).await;
    let ids = |sessions: &[sessionrank_data::Session]| -> Vec<String> {
        sessions.iter().map(|s| s.id.clone()).collect()
    };
    let paged = Window { page_rows: 7, ..Window::default() };
    let all = store.load_sessions(&catalog, &paged).await.expect("all");
    assert_eq!(all.len(), 30);
    assert_eq!(all[0].id, "s0", "ordered by their last event");
    assert!(all.iter().all(|s| s.events.len() == 3));
    let ts: Vec<i64> = all[29].events.iter().filter_map(|e| e.timestamp).collect();
    assert_eq!(ts, [1_700_002_900, 1_700_002_901, 1_700_002_902], "time order inside");

    let recent = Window { max_sessions: 10, ..paged.clone() };
    let got = store.load_sessions(&catalog, &recent).await.expect("recent");
    assert_eq!(ids(&got), (20..30).map(|k| format!("s{k}")).collect::<Vec<_>>());

    let short = Window { max_session_events: 2, ..paged.clone() };
    let got = store.load_sessions(&catalog, &short).await.expect("short");
    assert!(got.iter().all(|s| s.events.len() == 2));
    assert_eq!(got[0].events[0].timestamp, Some(1_700_000_001), "the newest events");

    let since = Window { since: Some(1_700_002_500), ..paged.clone() };
    let got = store.load_sessions(&catalog, &since).await.expect("since");
    assert_eq!(ids(&got), (25..30).map(|k| format!("s{k}")).collect::<Vec<_>>());

    // The job's window from its configuration.
    let cfg = sessionrank_server::RetrainConfig {
        window_days: Some(2),
        max_sessions: 1000,
        ..Default::default()
    };
    let w = cfg.window(1_700_200_000);
    assert_eq!((w.since, w.max_sessions), (Some(1_700_200_000 - 2 * 86_400), 1000));
}

#[tokio::test]
async fn item_counts_follow_ingest_erasure_and_retention_sqlite() {
    let (_dir, state) = sqlite_state(|_| {}).await;
    item_counts_follow_ingest_erasure_and_retention(state).await;
}

#[tokio::test]
async fn candidate_pages_are_cached_and_built_once_sqlite() {
    let (_dir, state) = sqlite_state(|_| {}).await;
    candidate_pages_are_cached_and_built_once(state).await;
}

#[tokio::test]
async fn retraining_reads_a_bounded_window_in_pages_sqlite() {
    let (_dir, state) = sqlite_state(|_| {}).await;
    retraining_reads_a_bounded_window_in_pages(state.store.clone()).await;
}

/// A database from before the counts table gets it filled from the stored events.
#[tokio::test]
async fn the_counts_of_an_older_database_are_filled_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sessionrank_server::config::sqlite_url(dir.path());
    {
        let store = Store::open(&url).await.expect("opens");
        thirty_sessions(&store).await;
        store.execute_raw("DROP TABLE item_counts").await.expect("drop");
        store.execute_raw("DELETE FROM schema_migrations WHERE version = 4").await.expect("rm");
    }
    let store = Store::open(&url).await.expect("migrates");
    assert_eq!(store.schema_version().await.expect("version"), SCHEMA_VERSION);
    let got = counts(&store).await;
    assert_eq!(got.iter().map(|(_, n)| n).sum::<i64>(), 90, "{got:?}");
    assert_eq!(got.len(), 5);
}
