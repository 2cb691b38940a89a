//! Issue 15 item 4 and the model cache: a bundle trained with the CLI (the committed
//! `tests/fixtures/bundle-slice`) uploaded with `sessionrank publish` to a running server is
//! served; a corrupted file, an unauthenticated upload, a wrong media type, an oversize body
//! and a taken version are refused and store nothing; versions live in the database, so a
//! second instance on the same database serves every one with the same bytes and ETags; the
//! cache holds as many versions as are kept and loads each once however many requests ask.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use sessionrank_core::ModelBundle;
use sessionrank_core::bundle::{MANIFEST, sha256_hex};
use sessionrank_server::client::Client;
use sessionrank_server::{AppState, Config, app};

use crate::common::*;

/// The committed CLI-trained bundle, file by file (manifest first), as on disk.
pub fn fixture_files() -> Vec<(String, Vec<u8>)> {
    let dir = repo().join("tests/fixtures/bundle-slice");
    let manifest = std::fs::read(dir.join(MANIFEST)).expect("fixture manifest");
    let parsed = ModelBundle::parse_manifest(&manifest).expect("fixture manifest parses");
    let mut files = vec![(MANIFEST.to_string(), manifest)];
    for name in parsed.files.keys() {
        files.push((name.clone(), std::fs::read(dir.join(name)).expect("fixture file")));
    }
    files
}

pub fn fixture_version() -> String {
    let files = fixture_files();
    ModelBundle::parse_manifest(&files[0].1).expect("manifest").model_version
}

/// A tar archive of `files`, as `sessionrank publish` or `tar -cf - -C dir .` sends it.
pub fn archive(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, format!("./{name}"), bytes.as_slice()).expect("append");
    }
    tar.into_inner().expect("archive")
}

async fn upload(app: &axum::Router, body: Vec<u8>, query: &str, token: Option<&str>) -> Resp {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/x-tar")];
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    call(app, "POST", &format!("/admin/models{query}"), &headers, body).await
}

async fn sqlite_state(configure: impl FnOnce(&mut Config)) -> (tempfile::TempDir, AppState) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    configure(&mut config);
    (dir, open(config).await)
}

// --- scenarios ------------------------------------------------------------------------------

/// Refusals name what is wrong and store nothing; then the real upload is served.
pub async fn uploads_are_verified_before_anything_is_stored(state: AppState) {
    let app = app(state.clone());
    let files = fixture_files();
    let version = fixture_version();

    let r = upload(&app, archive(&files), "", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    let r = upload(&app, archive(&files), "", Some("wrong-token")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let mut corrupt = files.clone();
    let weights = corrupt.iter_mut().find(|(n, _)| n == "weights.bpk").expect("weights");
    let mid = weights.1.len() / 2;
    weights.1[mid] ^= 0x40;
    let r = upload(&app, archive(&corrupt), "?activate=true", Some(TOKEN)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.field(), "weights.bpk");
    assert!(r.json()["error"].as_str().is_some_and(|e| e.contains("weights.bpk")), "{:?}", r.body);

    let missing: Vec<_> = files.iter().filter(|(n, _)| n != "items.json").cloned().collect();
    let r = upload(&app, archive(&missing), "", Some(TOKEN)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.field(), "items.json");
    let mut extra = files.clone();
    extra.push(("notes.txt".into(), b"hello".to_vec()));
    let r = upload(&app, archive(&extra), "", Some(TOKEN)).await;
    assert_eq!((r.status, r.field()), (StatusCode::UNPROCESSABLE_ENTITY, "notes.txt".into()));
    let mut renamed = files.clone();
    let manifest = String::from_utf8(renamed[0].1.clone()).expect("utf-8");
    renamed[0].1 = manifest.replace(&version, "../escape").into_bytes();
    let r = upload(&app, archive(&renamed), "", Some(TOKEN)).await;
    assert_eq!((r.status, r.field()), (StatusCode::UNPROCESSABLE_ENTITY, MANIFEST.into()));
    let r = call(
        &app,
        "POST",
        "/admin/models",
        &[("content-type", "application/json"), ("authorization", &format!("Bearer {TOKEN}"))],
        "{}",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = upload(&app, b"not a tar archive at all".repeat(40), "", Some(TOKEN)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(stats(&app).await["models"], 0, "nothing was stored");
    assert_eq!(call(&app, "GET", "/v1/models/current", &[], "").await.status, 404);

    // Published, not live; then the same version again is a conflict.
    let r = upload(&app, archive(&files), "", Some(TOKEN)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.json()["model_version"], version.as_str());
    assert_eq!(r.json()["live"], false);
    assert_eq!(call(&app, "GET", "/v1/models/current", &[], "").await.status, 404);
    for (name, bytes) in &files {
        let r = call(&app, "GET", &format!("/v1/models/{version}/{name}"), &[], "").await;
        assert_eq!(r.status, StatusCode::OK, "{name}");
        if name != MANIFEST {
            assert_eq!(&r.body[..], &bytes[..], "{name} is served byte for byte");
            assert_eq!(r.header("etag"), Some(format!("\"{}\"", sha256_hex(bytes)).as_str()));
        }
    }
    let r = upload(&app, archive(&files), "?activate=true", Some(TOKEN)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let r = admin(&app, "POST", &format!("/admin/models/{version}/activate")).await;
    assert_eq!(r.status, StatusCode::OK);
    let current = call(&app, "GET", "/v1/models/current", &[], "").await.json();
    assert_eq!(current["model_version"], version.as_str());
    let r = call(&app, "GET", &format!("/v1/models/{version}/browser/{MANIFEST}"), &[], "").await;
    assert_eq!(r.status, StatusCode::OK, "the browser bundle is derived");
}

/// A second instance on the same database (its own, empty models directory) serves every
/// version with the first one's bytes and ETags, and loads each once, also when many requests
/// ask at the same time; the cache holds every kept version.
pub async fn every_instance_serves_every_version_loading_each_once(
    first: AppState,
    second: AppState,
) {
    let kept = first.config.keep_versions;
    let base = tiny_bundle("v0");
    let versions: Vec<String> = (0..kept).map(|i| format!("v{i}")).collect();
    for v in &versions {
        first.models.publish(renamed(&base, v), v == "v0").await.expect("publish");
    }
    let (a, b) = (app(first.clone()), app(second.clone()));
    second.models.refresh().await.expect("refresh");
    assert_eq!(second.models.current_version().as_deref(), Some("v0"));
    let loads = second.models.loads();

    // 16 requests at once for one version not in memory: one load.
    let last = versions.last().expect("a version").clone();
    let gets: Vec<_> = (0..16)
        .map(|_| {
            let s = second.clone();
            let v = last.clone();
            tokio::spawn(async move { s.models.get(&v).await.expect("get") })
        })
        .collect();
    let mut models = Vec::new();
    for g in gets {
        models.push(g.await.expect("task"));
    }
    assert!(models.iter().all(|m| Arc::ptr_eq(m, &models[0])), "one loaded copy");
    assert_eq!(second.models.loads(), loads + 1, "single flight: loaded once");

    let mut etags = BTreeMap::new();
    for v in &versions {
        for (app, who) in [(&a, "first"), (&b, "second")] {
            for file in ["manifest.json", "weights.bpk", "browser/manifest.json"] {
                let r = call(app, "GET", &format!("/v1/models/{v}/{file}"), &[], "").await;
                assert_eq!(r.status, StatusCode::OK, "{who} {v}/{file}");
                let seen = (r.header("etag").expect("etag").to_string(), sha256_hex(&r.body));
                let first_seen = etags.entry((v.clone(), file)).or_insert_with(|| seen.clone());
                assert_eq!(*first_seen, seen, "{who} serves {v}/{file} like the other");
            }
        }
    }
    let after_all = second.models.loads();
    assert_eq!(after_all, loads + kept as u64 - 1, "each non-live version loaded once");
    for v in &versions {
        call(&b, "GET", &format!("/v1/models/{v}/items.json"), &[], "").await;
    }
    assert_eq!(second.models.loads(), after_all, "all {kept} kept versions stay in memory");
}

// --- SQLite ---------------------------------------------------------------------------------

#[tokio::test]
async fn uploads_are_verified_before_anything_is_stored_sqlite() {
    let (_dir, state) = sqlite_state(|_| {}).await;
    uploads_are_verified_before_anything_is_stored(state).await;
}

#[tokio::test]
async fn an_oversize_upload_is_refused_before_it_is_read() {
    let (_dir, state) = sqlite_state(|c| c.max_bundle_bytes = 64 << 10).await;
    let app = app(state);
    let r = upload(&app, archive(&fixture_files()), "", Some(TOKEN)).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.body);
    assert_eq!(stats(&app).await["models"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_instance_serves_every_version_loading_each_once_sqlite() {
    let (dir, first) = sqlite_state(|_| {}).await;
    let other = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(other.path());
    config.database_url = first.config.database_url.clone();
    let second = open(config).await;
    assert_ne!(first.models.dir(), second.models.dir());
    every_instance_serves_every_version_loading_each_once(first, second).await;
    drop(dir);
}

/// `sessionrank publish` against a running `sessionrank serve`: the committed CLI-trained
/// bundle goes live and is served byte for byte; without the token the command refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publish_command_makes_a_cli_trained_bundle_live() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, addr) = crate::durability::start_with(dir.path(), None, None).await;
    let bundle = repo().join("tests/fixtures/bundle-slice");
    let publish = move |token: Option<&str>| {
        let mut cmd = std::process::Command::new(sessionrank_bin());
        cmd.arg("publish").arg(&bundle).args(["--server", &format!("http://{addr}")]);
        cmd.arg("--activate").env_remove("SESSIONRANK_ADMIN_TOKEN").env("RUST_LOG", "warn");
        if let Some(t) = token {
            cmd.env("SESSIONRANK_ADMIN_TOKEN", t);
        }
        cmd.output().expect("sessionrank publish runs")
    };
    let out = tokio::task::spawn_blocking(move || (publish(None), publish(Some(TOKEN))))
        .await
        .expect("publish");
    let (without, with) = out;
    assert!(!without.status.success(), "no token: refused");
    assert!(String::from_utf8_lossy(&without.stderr).contains("SESSIONRANK_ADMIN_TOKEN"));
    assert!(with.status.success(), "{}", String::from_utf8_lossy(&with.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&with.stdout).expect("JSON answer");
    let version = fixture_version();
    assert_eq!(answer["model_version"], version.as_str());
    assert_eq!(answer["live"], true);

    let mut c = Client::connect(addr).await.expect("connect");
    let current = c.get("/v1/models/current").await.expect("current").json().expect("json");
    assert_eq!(current["model_version"], version.as_str());
    for (name, bytes) in fixture_files().iter().skip(1) {
        let r = c.get(&format!("/v1/models/{version}/{name}")).await.expect("file");
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(sha256_hex(&r.body), sha256_hex(bytes), "{name} is served as trained");
    }
    let r = c.get("/v1/candidates?limit=5").await.expect("candidates");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    child.start_kill().expect("kill");
    let _ = child.wait().await;
}
