//! Helpers shared by the test modules.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use burn::tensor::Device;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sessionrank_core::ModelBundle;
use sessionrank_data::{Catalog, Dataset, EventKind, Item};
use sessionrank_model::ModelConfig;
use sessionrank_server::client::Client;
use sessionrank_server::config::{RetrainConfig, TrainDevice};
use sessionrank_server::{AppState, Config};
use sessionrank_train::TrainConfig;
use sessionrank_train::pipeline::{FeatureOptions, build_encoder, bundle_for, complete_config};
use tower::ServiceExt;

pub const TOKEN: &str = "test-admin-token-0123456789";

/// The ingest key of [`test_config`] (scopes `events` and `items`).
pub const INGEST_KEY: &str = "test-ingest-key-0123456789";

/// [`INGEST_KEY`] as `SESSIONRANK_INGEST_KEYS` gives it to a spawned server.
pub fn ingest_keys_env() -> String {
    format!("test:events,items:{INGEST_KEY}")
}

/// A small, untrained bundle of the current architecture over items `i0..i29` (built here
/// rather than read from a committed fixture, so these tests follow model changes).
pub fn tiny_bundle(version: &str) -> ModelBundle {
    let mut catalog = Catalog::new();
    for i in 0..30 {
        catalog.upsert(Item {
            id: format!("i{i}"),
            text: format!("item {} colour {}", i, i % 5),
            category: Some(format!("c{}", i % 4)),
            price_level: Some((i % 8) as u8),
        });
    }
    let dataset = Dataset {
        name: "test".into(),
        kind: sessionrank_data::DatasetKind::Sessions,
        catalog,
        train: Vec::new(),
        valid: Vec::new(),
        test: Vec::new(),
    };
    let base = ModelConfig::new()
        .with_d_model(16)
        .with_n_layers(1)
        .with_n_heads(2)
        .with_d_ff(64)
        .with_max_len(20);
    let encoder =
        build_encoder(&dataset, &FeatureOptions::default(), base.max_len, base.max_candidates)
            .expect("encoder");
    let config = complete_config(base, &encoder);
    let model = config.init(&Device::flex());
    let bundle = bundle_for(&dataset, &config, &model, &encoder, json!({}), false).expect("bundle");
    renamed(&bundle, version)
}

/// The same files under another version name (checksums recomputed).
pub fn renamed(bundle: &ModelBundle, version: &str) -> ModelBundle {
    let mut m = bundle.manifest.clone();
    m.model_version = version.into();
    ModelBundle::new(m, bundle.files.clone())
}

/// A retraining configuration that finishes in seconds on 2 cores.
pub fn small_retrain() -> RetrainConfig {
    RetrainConfig {
        device: TrainDevice::Flex,
        train: Some(small_training()),
        time_budget_s: Some(20),
        max_eval_cases: 500,
        min_sessions: 10,
        ..RetrainConfig::default()
    }
}

/// Its training settings: a model of 16 dimensions, 2 epochs.
pub fn small_training() -> TrainConfig {
    let model = ModelConfig::new()
        .with_d_model(16)
        .with_n_layers(1)
        .with_n_heads(2)
        .with_d_ff(64)
        .with_max_len(20)
        .with_dropout(0.1);
    TrainConfig::new(model)
        .with_max_epochs(2)
        .with_batch_size(256)
        .with_patience(2)
        .with_id_dropout(0.1)
        .with_valid_cases(300)
}

pub fn test_config(dir: &Path) -> Config {
    let mut c = Config::for_data_dir(dir);
    c.admin_token = Some(TOKEN.into());
    c.ingest_keys = sessionrank_server::auth::IngestKeys::new(
        sessionrank_server::auth::parse_env_keys(&ingest_keys_env()).expect("test key parses"),
    )
    .expect("one key");
    c.retrain = small_retrain();
    c
}

pub async fn open(config: Config) -> AppState {
    AppState::open(config).await.expect("state opens")
}

/// A response, fully read.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `field` of a JSON error.
    pub fn field(&self) -> String {
        self.json()["field"].as_str().unwrap_or_default().to_string()
    }
}

/// A request as the shop's back end sends it: the write routes (`/v1/events`, `/v1/items`,
/// `/v1/sessions`) get `Authorization: Bearer` [`INGEST_KEY`] unless `headers` name an
/// `authorization` of their own; [`call_raw`] sends exactly what it is given.
pub async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Resp {
    let write = ["/v1/events", "/v1/items", "/v1/sessions"].iter().any(|p| uri.starts_with(p));
    let has_auth = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization"));
    if write && !has_auth {
        let auth = format!("Bearer {INGEST_KEY}");
        let mut with: Vec<(&str, &str)> = headers.to_vec();
        with.push(("authorization", &auth));
        return call_raw(app, method, uri, &with, body).await;
    }
    call_raw(app, method, uri, headers, body).await
}

pub async fn call_raw(
    app: &Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Resp {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(body.into()).expect("request builds"))
        .await
        .expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body reads").to_bytes();
    Resp { status, headers, body }
}

pub async fn send_json(app: &Router, method: &str, uri: &str, body: &Value) -> Resp {
    call(app, method, uri, &[("content-type", "application/json")], body.to_string()).await
}

pub async fn admin(app: &Router, method: &str, uri: &str) -> Resp {
    let auth = format!("Bearer {TOKEN}");
    call(app, method, uri, &[("authorization", &auth)], Body::empty()).await
}

/// `n` items `i0..`: text, a category, a price.
pub fn items_json(n: usize) -> Value {
    let items: Vec<Value> =
        (0..n).map(|i| json!({"id": format!("i{i}"), "text": format!("item {} colour {}", i, i % 5), "category": format!("c{}", i % 4), "price": (i * 3) as f64})).collect();
    json!({"items": items})
}

/// `sessions` sessions of 5 events over items `i0..i{n_items}`, with a pattern to learn
/// (each session walks forward through the items).
pub fn events_json(sessions: usize, n_items: usize, start: usize) -> Value {
    let mut events = Vec::new();
    for s in start..start + sessions {
        for j in 0..5 {
            events.push(json!({
                "session_id": format!("s{s}"),
                "item_id": format!("i{}", (s + j) % n_items),
                "type": if j == 4 { "add_to_cart" } else { "view" },
                "timestamp": 1_700_000_000 + (s * 100 + j) as i64,
            }));
        }
    }
    json!({"events": events})
}

pub async fn stats(app: &Router) -> Value {
    let r = admin(app, "GET", "/admin/stats").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.json()
}

/// Poll a job until it is no longer running.
pub async fn wait_for_job(app: &Router, id: &str, timeout: Duration) -> Value {
    let start = Instant::now();
    loop {
        let r = admin(app, "GET", &format!("/admin/jobs/{id}")).await;
        assert_eq!(r.status, StatusCode::OK);
        let job = r.json();
        if job["state"] != "running" {
            return job;
        }
        assert!(start.elapsed() < timeout, "job {id} still running after {timeout:?}: {job}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Entries of the models directory (names), sorted.
pub fn models_dir_entries(state: &AppState) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(state.models.dir())
        .expect("models dir lists")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    v.sort();
    v
}

pub fn kind_name(k: EventKind) -> &'static str {
    match k {
        EventKind::View => "view",
        EventKind::AddToCart => "add_to_cart",
        EventKind::Purchase => "purchase",
    }
}

/// `PUT /v1/items` for a whole catalog, 2,000 items a request.
pub async fn put_catalog(c: &mut Client, catalog: &Catalog) {
    for chunk in catalog.items().chunks(2000) {
        let items: Vec<Value> =
            chunk.iter().map(|it| json!({"id": it.id, "text": it.text, "category": it.category, "price_level": it.price_level})).collect();
        let r = c
            .json("PUT", "/v1/items", &json!({"items": items}), Some(INGEST_KEY))
            .await
            .expect("PUT items");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
}

/// The events of the first `sessions` training sessions as `POST /v1/events` items (sessions
/// without times get one second per event from a fixed start).
pub fn training_events(data: &Dataset, sessions: usize) -> Vec<Value> {
    let mut events = Vec::new();
    for s in data.train.iter().take(sessions) {
        for (j, e) in s.events.iter().enumerate() {
            let item = data.catalog.get(e.item).expect("catalog item");
            let ts = e.timestamp.unwrap_or(1_460_000_000) + j as i64;
            events.push(json!({"session_id": s.id, "item_id": item.id, "type": kind_name(e.kind), "timestamp": ts}));
        }
    }
    events
}

/// The repository root, found at run time from the working directory (`cargo test` runs in the
/// package's directory): a compile-time path would go stale when checkouts share a build cache.
pub fn repo() -> PathBuf {
    let cwd = std::env::current_dir().expect("working directory");
    cwd.ancestors()
        .find(|d| d.join("Trunk.toml").is_file())
        .map(Path::to_path_buf)
        .expect("run inside the repository")
}

/// The `sessionrank` binary, built by the `sessionrank-cli` crate: `$SESSIONRANK_BIN` when
/// set, else `sessionrank` beside this test's own `deps/` directory (same target directory and
/// profile). `cargo test --workspace` builds it (the cli crate has integration tests); a run of
/// this package alone needs `cargo build --release -p sessionrank-cli` first.
pub fn sessionrank_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("SESSIONRANK_BIN").filter(|b| !b.is_empty()) {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    // <target>/<profile>/deps/<test> → <target>/<profile>/sessionrank
    let profile_dir = exe.parent().and_then(Path::parent).expect("<target>/<profile>");
    let bin = profile_dir.join(format!("sessionrank{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build --release -p sessionrank-cli` \
         (`cargo test --workspace` does) or set SESSIONRANK_BIN",
        bin.display()
    );
    bin
}

/// The committed real sample (`tests/data`: the Diginetica metadata slice), so the tests that
/// need real sessions run in any clone, with or without `../shared/data`.
pub fn sample_dir() -> PathBuf {
    repo().join("tests/data")
}

/// Says that the calling test skips because `missing` is absent (straight on stderr: the
/// harness hides what a passing test prints), or fails it when the run must not skip: under
/// `CI=true`, or with `require` (e.g. `SESSIONRANK_BROWSER_TESTS=1`), so a CI run cannot pass
/// without running every test. The caller returns after it.
pub fn skip_unless_required(missing: &str, require: bool) {
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let why = if in_ci { "CI=true" } else { "this run requires it" };
    assert!(!in_ci && !require, "{missing}; not skipping the test: {why}");
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {missing}");
}
