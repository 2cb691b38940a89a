//! Who may write: ingest keys with scopes, distinct from the admin token; CORS for the public
//! routes only; `nosniff` everywhere and a CSP on the pages. A refused write stores nothing
//! (on SQLite here, on PostgreSQL through [`crate::postgres`]).

use axum::http::StatusCode;
use serde_json::json;
use sessionrank_server::auth::{IngestKeys, parse_env_keys};
use sessionrank_server::{AppState, Config, app};

use crate::common::*;

const EVENTS_ONLY: &str = "tracker-key-0123456789abcdef";
const ITEMS_ONLY: &str = "catalog-key-0123456789abcdef";

/// The test key plus one key per scope.
pub fn scoped_keys(c: &mut Config) {
    let env =
        format!("{} tracker:events:{EVENTS_ONLY}; catalog:items:{ITEMS_ONLY}", ingest_keys_env());
    c.ingest_keys = IngestKeys::new(parse_env_keys(&env).expect("keys parse")).expect("keys");
}

async fn sqlite_state(configure: impl FnOnce(&mut Config)) -> (tempfile::TempDir, AppState) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    configure(&mut config);
    (dir, open(config).await)
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// 401 without a key, with an unknown one and with the admin token; 403 with a key of the
/// other scope; nothing stored by any of them; the right key stores.
pub async fn writes_need_a_key_with_the_scope_and_refused_ones_store_nothing(state: AppState) {
    let app = app(state);
    let items = items_json(10).to_string();
    let events = events_json(2, 10, 0).to_string();
    let json = ("content-type", "application/json");
    for auth in [None, Some(bearer("not-a-key-0123456789")), Some(bearer(TOKEN))] {
        let headers: Vec<(&str, &str)> = match &auth {
            Some(a) => vec![json, ("authorization", a.as_str())],
            None => vec![json],
        };
        let r = call_raw(&app, "PUT", "/v1/items", &headers, items.clone()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{auth:?}: {:?}", r.body);
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        let r = call_raw(&app, "POST", "/v1/events", &headers, events.clone()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{auth:?}");
    }
    let events_only = bearer(EVENTS_ONLY);
    let r =
        call_raw(&app, "PUT", "/v1/items", &[json, ("authorization", &events_only)], items.clone())
            .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert!(r.json()["error"].as_str().unwrap_or("").contains("`tracker`"), "{:?}", r.body);
    assert!(!String::from_utf8_lossy(&r.body).contains(EVENTS_ONLY), "the secret is not echoed");
    assert_eq!(stats(&app).await["items"], 0, "nothing stored");

    let items_only = bearer(ITEMS_ONLY);
    let r =
        call_raw(&app, "PUT", "/v1/items", &[json, ("authorization", &items_only)], items).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = call_raw(
        &app,
        "POST",
        "/v1/events",
        &[json, ("authorization", &items_only)],
        events.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(stats(&app).await["events"], 0, "nothing stored");
    let r = call_raw(&app, "POST", "/v1/events", &[json, ("authorization", &events_only)], events)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(stats(&app).await["events"], 10);

    // An ingest key is not an admin token.
    let r = call_raw(&app, "GET", "/admin/stats", &[("authorization", &events_only)], "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn writes_need_a_key_with_the_scope_and_refused_ones_store_nothing_sqlite() {
    let (_dir, state) = sqlite_state(scoped_keys).await;
    writes_need_a_key_with_the_scope_and_refused_ones_store_nothing(state).await;
}

#[tokio::test]
async fn without_ingest_keys_every_write_is_refused() {
    let (_dir, state) = sqlite_state(|c| c.ingest_keys = IngestKeys::default()).await;
    let app = app(state);
    let r = send_json(&app, "PUT", "/v1/items", &items_json(3)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(stats(&app).await["items"], 0);
}

/// A refused write is refused before its body is read: a body far over the limit still
/// gets the 401, not a 413.
#[tokio::test]
async fn the_key_is_checked_before_the_body_is_read() {
    let (_dir, state) = sqlite_state(|c| c.body_limit = 1024).await;
    let app = app(state);
    let big = "x".repeat(64 * 1024);
    let r =
        call_raw(&app, "POST", "/v1/events", &[("content-type", "application/json")], big).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn cors_allows_the_configured_origins_on_public_routes_only() {
    let shop = "https://shop.example";
    let (_dir, state) = sqlite_state(|c| c.cors_origins = vec![shop.into()]).await;
    let app = app(state);
    let r = call(&app, "GET", "/v1/candidates?limit=3", &[("origin", shop)], "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("access-control-allow-origin"), Some(shop));
    let r = call(&app, "GET", "/v1/candidates?limit=3", &[("origin", "https://evil.example")], "")
        .await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    // The vectors query's preflight (a POST with a JSON body).
    let preflight = [
        ("origin", shop),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "content-type"),
    ];
    let r = call(&app, "OPTIONS", "/v1/models/v1/vectors", &preflight, "").await;
    assert!(r.status.is_success(), "{:?}", r.status);
    assert_eq!(r.header("access-control-allow-origin"), Some(shop));
    // Writes and the operator's routes are not for browsers of other origins.
    let r = call(&app, "OPTIONS", "/v1/events", &preflight, "").await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    let r = call(&app, "GET", "/admin/stats", &[("origin", shop)], "").await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    // Without origins configured: same origin only.
    let (_dir2, state) = sqlite_state(|_| {}).await;
    let r = call(&sessionrank_server::app(state), "GET", "/v1/candidates", &[("origin", shop)], "")
        .await;
    assert_eq!(r.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn answers_are_nosniff_and_pages_have_a_csp() {
    let web = tempfile::tempdir().expect("tempdir");
    std::fs::write(web.path().join("index.html"), "<!doctype html><p>hi").expect("write");
    let web_dir = web.path().to_path_buf();
    let (_dir, state) = sqlite_state(|c| c.web_dir = Some(web_dir)).await;
    let app = app(state);
    let page = call(&app, "GET", "/", &[], "").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    let csp = page.header("content-security-policy").unwrap_or_default().to_string();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("'wasm-unsafe-eval'"), "the browser package compiles WebAssembly");
    for uri in ["/healthz", "/v1/candidates", "/nope"] {
        let r = call(&app, "GET", uri, &[], "").await;
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{uri}");
    }
    let r = call(&app, "GET", "/v1/models", &[], "").await;
    assert_eq!(r.json()["versions"], json!([]));
}
