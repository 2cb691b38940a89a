//! SIGKILL during a flat-out ingest: every acknowledged event survives the restart, and no
//! batch is half stored.

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
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sessionrank"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(data_dir);
    if let Some(url) = database_url {
        cmd.args(["--database-url", url]);
    }
    cmd.env("SESSIONRANK_ADMIN_TOKEN", TOKEN)
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
    let r = c.json("PUT", "/v1/items", &items_json(100), None).await.expect("items");
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
                match c.send("POST", "/v1/events", &[("content-type", "application/json"), ("idempotency-key", &key)], body).await {
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
    let stats = c.json("GET", "/admin/stats", &json!(null), Some(TOKEN)).await.expect("stats").json().expect("json");
    let stored = stats["events"].as_u64().expect("events");
    eprintln!("acknowledged {acked} events before SIGKILL; {stored} stored after restart");
    assert!(stored >= acked, "lost acknowledged events: {acked} acknowledged, {stored} stored");
    assert!(stored - acked <= (WORKERS * BATCH) as u64, "more unacknowledged events than were in flight");
    assert_eq!(stored % BATCH as u64, 0, "a batch was stored in part");
    child.start_kill().expect("SIGKILL");
    let _ = child.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_ingest_loses_no_acknowledged_event_sqlite() {
    kill_during_ingest_loses_no_acknowledged_event(None).await;
}
