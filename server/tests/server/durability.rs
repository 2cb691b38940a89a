//! SIGKILL during a flat-out ingest: every acknowledged event survives the restart, and no
//! batch is half stored. SIGKILL during retraining: the live model stays live, the models
//! directory holds only complete bundles, and the job is reported as interrupted.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;
use sessionrank_server::client::Client;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::common::*;

const BATCH: usize = 50;
const WORKERS: usize = 8;

/// Start `sessionrank serve` on an OS-chosen port; returns the child and its address.
async fn start(data_dir: &std::path::Path, database_url: Option<&str>) -> (Child, SocketAddr) {
    start_with(data_dir, database_url, None).await
}

/// [`start`] with a TOML configuration file.
pub(crate) async fn start_with(
    data_dir: &std::path::Path,
    database_url: Option<&str>,
    config: Option<&std::path::Path>,
) -> (Child, SocketAddr) {
    let mut cmd = Command::new(sessionrank_bin());
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(data_dir);
    if let Some(path) = config {
        cmd.arg("--config").arg(path);
    }
    if let Some(url) = database_url {
        cmd.args(["--database-url", url]);
    }
    cmd.env("SESSIONRANK_ADMIN_TOKEN", TOKEN)
        .env("SESSIONRANK_INGEST_KEYS", ingest_keys_env())
        .env("RUST_LOG", "warn")
        .env_remove("SESSIONRANK_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("the sessionrank binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(a) = line.strip_prefix("listening on http://") {
                return a.parse::<SocketAddr>().ok();
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .expect("the server prints its address");
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

pub async fn kill_during_ingest_loses_no_acknowledged_event(database_url: Option<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, addr) = start(dir.path(), database_url.as_deref()).await;
    let mut c = Client::connect(addr).await.expect("connect");
    let r = c.json("PUT", "/v1/items", &items_json(100), Some(INGEST_KEY)).await.expect("items");
    assert_eq!(r.status, 200);

    let acked = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let acked = acked.clone();
        workers.push(tokio::spawn(async move {
            let Ok(mut c) = Client::connect(addr).await else { return };
            for n in 0.. {
                let events: Vec<_> = (0..BATCH)
                    .map(|j| json!({"session_id": format!("w{w}-{n}"), "item_id": format!("i{}", (n + j) % 100), "type": "view", "timestamp": 1_700_000_000 + j as i64}))
                    .collect();
                let body = serde_json::to_vec(&json!({"events": events})).unwrap_or_default();
                let key = format!("w{w}-{n}");
                let auth = format!("Bearer {INGEST_KEY}");
                let headers = [
                    ("content-type", "application/json"),
                    ("idempotency-key", key.as_str()),
                    ("authorization", auth.as_str()),
                ];
                match c.send("POST", "/v1/events", &headers, body).await {
                    Ok(r) if r.status == 200 => {
                        acked.fetch_add(BATCH as u64, Ordering::SeqCst);
                    }
                    _ => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("the server exits");
    for w in workers {
        let _ = w.await;
    }
    let acked = acked.load(Ordering::SeqCst);
    assert!(acked > 0, "nothing was acknowledged before the kill");

    let (mut child, addr) = start(dir.path(), database_url.as_deref()).await;
    let mut c = Client::connect(addr).await.expect("connect after restart");
    let stats = c
        .json("GET", "/admin/stats", &json!(null), Some(TOKEN))
        .await
        .expect("stats")
        .json()
        .expect("json");
    let stored = stats["events"].as_u64().expect("events");
    eprintln!("acknowledged {acked} events before SIGKILL; {stored} stored after restart");
    assert!(stored >= acked, "lost acknowledged events: {acked} acknowledged, {stored} stored");
    assert!(
        stored - acked <= (WORKERS * BATCH) as u64,
        "more unacknowledged events than were in flight"
    );
    assert_eq!(stored % BATCH as u64, 0, "a batch was stored in part");
    child.start_kill().expect("SIGKILL");
    let _ = child.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_ingest_loses_no_acknowledged_event_sqlite() {
    kill_during_ingest_loses_no_acknowledged_event(None).await;
}

/// GET `path` with the admin token, as JSON.
pub(crate) async fn admin_get(c: &mut Client, path: &str) -> serde_json::Value {
    let r = c.json("GET", path, &json!(null), Some(TOKEN)).await.expect("admin GET");
    assert_eq!(r.status, 200, "{path}: {}", String::from_utf8_lossy(&r.body));
    r.json().expect("json")
}

/// Start a retraining job; its id.
pub(crate) async fn start_retrain(c: &mut Client) -> String {
    let r = c.json("POST", "/admin/retrain", &json!(null), Some(TOKEN)).await.expect("retrain");
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    r.json().expect("json")["id"].as_str().expect("job id").to_string()
}

/// A small CPU model; `epochs` (also when warm-started) and a time budget long enough that
/// only the epochs end the run.
pub(crate) fn retrain_toml(epochs: usize) -> String {
    format!(
        "[retrain]\ndevice = \"flex\"\nmax_eval_cases = 500\nwarm_start_epochs = {epochs}\n\
         time_budget_s = 3600\n\
         [retrain.train]\nbatch_size = 64\nvalid_cases = 300\nmax_epochs = {epochs}\n\
         patience = {epochs}\nid_dropout = 0.1\n\
         [retrain.train.model]\nd_model = 16\nn_layers = 1\nn_heads = 2\nd_ff = 64\nmax_len = 20\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_training_keeps_the_live_model_and_leaves_no_partial_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let (quick, slow) = (dir.path().join("quick.toml"), dir.path().join("slow.toml"));
    std::fs::write(&quick, retrain_toml(1)).expect("write config");
    std::fs::write(&slow, retrain_toml(10_000)).expect("write config");

    // A live model from a quick job.
    let (mut child, addr) = start_with(&data_dir, None, Some(&quick)).await;
    let mut c = Client::connect(addr).await.expect("connect");
    assert_eq!(
        c.json("PUT", "/v1/items", &items_json(100), Some(INGEST_KEY)).await.expect("items").status,
        200
    );
    assert_eq!(
        c.json("POST", "/v1/events", &events_json(1500, 100, 0), Some(INGEST_KEY))
            .await
            .expect("events")
            .status,
        200
    );
    let id = start_retrain(&mut c).await;
    let start = std::time::Instant::now();
    let job = loop {
        let job = admin_get(&mut c, &format!("/admin/jobs/{id}")).await;
        if job["state"] != "running" {
            break job;
        }
        assert!(start.elapsed() < Duration::from_secs(300), "quick job still running: {job}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(job["published"], true, "{job}");
    let live = job["model_version"].as_str().expect("version").to_string();
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("the server exits");

    // A job that would train for hours, killed once it is visibly training.
    let (mut child, addr) = start_with(&data_dir, None, Some(&slow)).await;
    let mut c = Client::connect(addr).await.expect("connect");
    let id = start_retrain(&mut c).await;
    let start = std::time::Instant::now();
    loop {
        let job = admin_get(&mut c, &format!("/admin/jobs/{id}")).await;
        assert_eq!(job["state"], "running", "{job}");
        // Progress moves inside the training stage: a finished epoch with validation metrics.
        if job["stage"] == "training"
            && job["metrics"]["training"]["last_epoch"]["valid"]["mrr_at_20"].is_number()
        {
            assert!(job["progress"].as_f64().is_some_and(|p| p > 0.1 && p < 0.8), "{job}");
            let metrics = String::from_utf8_lossy(&c.get("/metrics").await.expect("metrics").body)
                .into_owned();
            let gauge = metrics
                .lines()
                .find_map(|l| {
                    l.strip_prefix(&format!("sessionrank_training_progress{{job=\"{id}\"}} "))
                })
                .and_then(|v| v.parse::<f64>().ok());
            assert!(gauge.is_some_and(|g| g > 0.1), "the progress gauge moves: {metrics}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(300), "no epoch finished: {job}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("the server exits");

    let (mut child, addr) = start_with(&data_dir, None, Some(&slow)).await;
    let mut c = Client::connect(addr).await.expect("connect after restart");
    let current = c.get("/v1/models/current").await.expect("current").json().expect("json");
    assert_eq!(current["model_version"], live.as_str(), "the live model is unchanged");
    let job = admin_get(&mut c, &format!("/admin/jobs/{id}")).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(job["reason"].as_str().is_some_and(|r| r.starts_with("interrupted")), "{job}");
    assert_eq!(job["published"], false);
    // Only complete bundles: the live one and the pointer, each bundle verifying.
    let models = data_dir.join("models");
    let mut entries: Vec<String> = std::fs::read_dir(&models)
        .expect("models dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    entries.sort();
    assert_eq!(entries, vec![live.clone(), "current".to_string()], "no partial files");
    sessionrank_core::ModelBundle::read_dir(&models.join(&live)).expect("the live bundle verifies");
    sessionrank_core::ModelBundle::read_dir(&models.join(&live).join("browser"))
        .expect("and its browser bundle");
    let list = c.get("/v1/models").await.expect("models").json().expect("json");
    assert_eq!(list["versions"].as_array().map(Vec::len), Some(1), "{list}");
    child.start_kill().expect("SIGKILL");
    let _ = child.wait().await;
}
