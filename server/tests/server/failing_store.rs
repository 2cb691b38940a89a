//! A failing store under a running server: the database locked by another process (SQLite),
//! the disk full (SQLite on a small tmpfs; a publish on it), the database refusing
//! connections and the server's connections killed (PostgreSQL). In each case requests get a
//! 503 with a JSON body that says so and `Retry-After`, `/readyz` reports it, nothing
//! acknowledged is lost, and the same server takes the retried request once the store is
//! back — no restart.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use serde_json::Value;
use sessionrank_server::store::Store;
use sessionrank_server::{AppState, app};
use sqlx::Connection;

use crate::common::*;

/// `POST /v1/events` with an idempotency key.
async fn post_events(app: &Router, key: &str, body: &Value) -> Resp {
    call(
        app,
        "POST",
        "/v1/events",
        &[("content-type", "application/json"), ("idempotency-key", key)],
        body.to_string(),
    )
    .await
}

/// A 503 that names the store's trouble and asks for a retry.
fn assert_unavailable(r: &Resp, cause: &str) {
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    assert_eq!(body["unavailable"], cause, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("retry")), "{body}");
    assert!(r.header("retry-after").is_some(), "Retry-After");
}

/// `/readyz` is 503 and one of its reasons mentions `what`.
async fn assert_not_ready(app: &Router, what: &str) {
    let r = call(app, "GET", "/readyz", &[], "").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", String::from_utf8_lossy(&r.body));
    let reasons = r.json()["reasons"].to_string();
    assert!(reasons.contains(what), "{reasons}");
}

async fn assert_ready(app: &Router) {
    let r = call(app, "GET", "/readyz", &[], "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", String::from_utf8_lossy(&r.body));
}

/// A live model, the catalog and a first acknowledged batch (5 events).
async fn prepare(state: &AppState, app: &Router) {
    state.models.publish(tiny_bundle("v1"), true).await.expect("publish");
    assert_eq!(send_json(app, "PUT", "/v1/items", &items_json(30)).await.status, StatusCode::OK);
    assert_eq!(post_events(app, "first", &events_json(1, 30, 0)).await.status, StatusCode::OK);
    assert_ready(app).await;
}

#[tokio::test]
async fn a_database_locked_by_another_process_is_a_503_then_recovers_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = test_config(dir.path());
    let url = config.database_url.clone();
    let state = open(config).await;
    let app = app(state.clone());
    prepare(&state, &app).await;

    // Another process takes the write lock and keeps it past the busy timeout.
    let mut other = sqlx::SqliteConnection::connect(&url).await.expect("second connection");
    sqlx::query("BEGIN EXCLUSIVE").execute(&mut other).await.expect("lock");
    let second = events_json(2, 30, 10);
    assert_unavailable(&post_events(&app, "second", &second).await, "locked");
    assert_not_ready(&app, "locked").await;
    // Reads still work meanwhile (WAL).
    assert_eq!(call(&app, "GET", "/v1/candidates", &[], "").await.status, StatusCode::OK);

    sqlx::query("ROLLBACK").execute(&mut other).await.expect("unlock");
    let r = post_events(&app, "second", &second).await;
    assert_eq!(r.status, StatusCode::OK, "the retry after the lock: {:?}", r.body);
    assert!(r.header("idempotent-replayed").is_none(), "the failed attempt stored nothing");
    assert_ready(&app).await;
    assert_eq!(stats(&app).await["events"], 5 + 10, "every acknowledged event, once");
}

/// A tmpfs of `mb` megabytes mounted at a fresh directory, unmounted on drop. Needs root
/// (CAP_SYS_ADMIN); `None` where mounting is not allowed.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(mb: usize) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write a filler file until the disk is full.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        // The last partial chunk: fill byte by byte to the very end.
        while f.write_all(&[0]).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

#[tokio::test]
async fn a_full_disk_is_a_503_keeps_the_live_model_and_recovers_sqlite() {
    let Some(disk) = SmallDisk::mount(16) else {
        skip_unless_required("cannot mount a tmpfs (needs root) to fill a disk", false);
        return;
    };
    let data = disk.path().join("data");
    let config = test_config(&data);
    let state = open(config).await;
    let app = app(state.clone());
    prepare(&state, &app).await;

    let filler = disk.fill();
    let second = events_json(2, 30, 10);
    assert_unavailable(&post_events(&app, "second", &second).await, "full");
    assert_not_ready(&app, "disk full").await;

    // A publish on the full disk fails, leaves the live model live and no partial files.
    let before = models_dir_entries(&state);
    assert!(state.models.publish(tiny_bundle("v2"), true).await.is_err(), "publish on a full disk");
    assert_eq!(state.models.current_version().as_deref(), Some("v1"));
    assert_eq!(models_dir_entries(&state), before, "no partial version, no temporary files");
    assert_eq!(call(&app, "GET", "/v1/models/current", &[], "").await.status, StatusCode::OK);

    std::fs::remove_file(&filler).expect("free the disk");
    let r = post_events(&app, "second", &second).await;
    assert_eq!(r.status, StatusCode::OK, "the retry with space again: {:?}", r.body);
    assert_ready(&app).await;
    assert_eq!(stats(&app).await["events"], 5 + 10, "every acknowledged event, once");
    state.models.publish(tiny_bundle("v2"), true).await.expect("publish with space again");
    assert_eq!(state.models.current_version().as_deref(), Some("v2"));
    drop(app);
    drop(state);
}

/// PostgreSQL: the service connects as a role of its own (so that the test can take the
/// database away from it alone, on a cluster other tests share) into a schema of its own.
#[tokio::test]
async fn a_database_that_refuses_connections_is_a_503_then_recovers_postgres() {
    let Ok(base) = std::env::var("SESSIONRANK_TEST_POSTGRES_URL") else {
        skip_unless_required("SESSIONRANK_TEST_POSTGRES_URL is not set", false);
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let role = format!("t_fail_{:x}_{nanos:x}", std::process::id());
    let admin = Store::open(&base).await.expect("PostgreSQL is reachable");
    admin.execute_raw(&format!("CREATE ROLE {role} LOGIN")).await.expect("role");
    admin.execute_raw(&format!("CREATE SCHEMA {role} AUTHORIZATION {role}")).await.expect("schema");
    // postgres://user@host/db → postgres://<role>@host/db, search_path = its schema.
    let rest = base.split_once('@').map(|(_, r)| r).expect("URL with a user");
    let sep = if rest.contains('?') { '&' } else { '?' };
    let url = format!("postgres://{role}@{rest}{sep}options%5Bsearch_path%5D={role}");

    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.database_url = url;
    let state = open(config).await;
    let app = app(state.clone());
    prepare(&state, &app).await;

    // The database goes away for this service: no new connection is accepted and the open
    // ones are killed (as in a failover or a restart of the server).
    admin.execute_raw(&format!("ALTER ROLE {role} CONNECTION LIMIT 0")).await.expect("limit");
    let kill =
        format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'");
    admin.execute_raw(&kill).await.expect("terminate");
    let second = events_json(2, 30, 10);
    let r = post_events(&app, "second", &second).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.body);
    assert!(r.header("retry-after").is_some());
    assert_not_ready(&app, "database").await;

    admin.execute_raw(&format!("ALTER ROLE {role} CONNECTION LIMIT -1")).await.expect("unlimit");
    let r = post_events(&app, "second", &second).await;
    assert_eq!(r.status, StatusCode::OK, "the retry once the database is back: {:?}", r.body);
    assert_ready(&app).await;
    assert_eq!(stats(&app).await["events"], 5 + 10, "every acknowledged event, once");

    drop(app);
    drop(state);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = admin.execute_raw(&kill).await;
    let _ = admin.execute_raw(&format!("DROP SCHEMA {role} CASCADE")).await;
    let _ = admin.execute_raw(&format!("DROP ROLE {role}")).await;
}
