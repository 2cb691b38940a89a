//! Regression tests for the review's findings: a manifest's names are checked before they are
//! joined to paths; concurrent retries of one idempotency key store once; a panicking job
//! frees the retrain slot; PostgreSQL commits synchronously whatever its default; a failed
//! prune after a publish is not a failed publish. (The admin token's whitespace and unique
//! temporary names: unit tests in `config.rs` and `sessionrank-core`'s `bundle.rs`.)

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::Value;
use sessionrank_core::ModelBundle;
use sessionrank_server::{AppState, Config, app};

use crate::common::*;

async fn sqlite_state(configure: impl FnOnce(&mut Config)) -> (tempfile::TempDir, AppState) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    configure(&mut config);
    (dir, open(config).await)
}

/// A bundle directory whose manifest was edited by `edit` (checksums untouched).
fn tampered_bundle(edit: impl FnOnce(&mut Value)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle_dir = dir.path().join("bundle");
    tiny_bundle("v1").write_dir(&bundle_dir).expect("write");
    let path = bundle_dir.join("manifest.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    edit(&mut manifest);
    std::fs::write(&path, serde_json::to_vec(&manifest).expect("json")).expect("write");
    dir
}

#[test]
fn a_manifest_naming_paths_is_refused_before_any_path_is_joined() {
    let dir = tampered_bundle(|m| m["model_version"] = "../../escaped".into());
    let e = ModelBundle::read_dir(&dir.path().join("bundle")).expect_err("refused");
    assert!(e.to_string().contains("model_version"), "{e}");
    let dir = tampered_bundle(|m| {
        let files = m["files"].as_object_mut().expect("files");
        let entry = files.remove("items.json").expect("items.json");
        files.insert("../items.json".into(), entry);
    });
    let e = ModelBundle::read_dir(&dir.path().join("bundle")).expect_err("refused");
    assert!(e.to_string().contains("../items.json"), "{e}");

    // `sessionrank export` writes and deletes nothing outside `--out`.
    let dir = tampered_bundle(|m| m["model_version"] = "..".into());
    let out = dir.path().join("out");
    let o = std::process::Command::new(sessionrank_bin())
        .arg("export")
        .arg(dir.path().join("bundle"))
        .arg("--out")
        .arg(&out)
        .output()
        .expect("runs");
    assert!(!o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(dir.path().join("bundle/manifest.json").exists(), "nothing deleted");
    assert!(!out.exists(), "nothing written");
}

/// The same request sent eight times at once with one key: one batch stored, eight 200s,
/// seven of them replays.
pub async fn concurrent_retries_of_one_key_store_once(state: AppState) {
    let app = app(state);
    assert_eq!(send_json(&app, "PUT", "/v1/items", &items_json(10)).await.status, StatusCode::OK);
    let body = events_json(2, 10, 0).to_string();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (app, body) = (app.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let headers = [("content-type", "application/json"), ("idempotency-key", "same-key")];
            call(&app, "POST", "/v1/events", &headers, body).await
        }));
    }
    let mut replays = 0;
    for t in tasks {
        let r = t.await.expect("task");
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        replays += usize::from(r.header("idempotent-replayed") == Some("true"));
    }
    assert_eq!(replays, 7);
    assert_eq!(stats(&app).await["events"], 10);
}

#[tokio::test]
async fn concurrent_retries_of_one_key_store_once_sqlite() {
    let (_dir, state) = sqlite_state(|_| {}).await;
    concurrent_retries_of_one_key_store_once(state).await;
}

/// A job that panics is marked failed and frees the slot: the next job starts.
pub async fn a_panicking_job_frees_the_retrain_slot(state: AppState) {
    let app = app(state);
    send_json(&app, "PUT", "/v1/items", &items_json(10)).await;
    send_json(&app, "POST", "/v1/events", &events_json(40, 10, 0)).await;
    let r = admin(&app, "POST", "/admin/retrain").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let id = r.json()["id"].as_str().expect("id").to_string();
    let job = wait_for_job(&app, &id, Duration::from_secs(30)).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(job["reason"].as_str().unwrap_or("").contains("unexpectedly"), "{job}");
    assert!(stats(&app).await["running_job"].is_null());
    let r = admin(&app, "POST", "/admin/retrain").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "the slot is free: {:?}", r.body);
    let id = r.json()["id"].as_str().expect("id").to_string();
    wait_for_job(&app, &id, Duration::from_secs(30)).await;
}

pub fn panics_after_loading(c: &mut Config) {
    c.retrain.panic_after_loading = true;
}

#[tokio::test]
async fn a_panicking_job_frees_the_retrain_slot_sqlite() {
    let (_dir, state) = sqlite_state(panics_after_loading).await;
    a_panicking_job_frees_the_retrain_slot(state).await;
}

#[tokio::test]
async fn a_prune_error_after_publishing_is_not_a_failed_publish() {
    let (_dir, state) = sqlite_state(|c| c.keep_versions = 1).await;
    let bundle = tiny_bundle("v1");
    state.models.publish(bundle.clone(), true).await.expect("v1");
    // Pruning v1 renames it to `.trash-v1`: a non-empty directory there makes that fail.
    let trash = state.models.dir().join(".trash-v1");
    std::fs::create_dir_all(trash.join("x")).expect("mkdir");
    let v2 = state.models.publish(renamed(&bundle, "v2"), true).await.expect("v2 is published");
    assert_eq!(v2, "v2");
    assert_eq!(state.models.current_version().as_deref(), Some("v2"));
}
