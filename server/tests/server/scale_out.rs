//! Issue 18, end to end: three `sessionrank serve` processes on one PostgreSQL, driven with
//! client-side round robin (each request goes to the next instance; one that does not answer
//! is skipped and the request retried on the next one with the same idempotency key).
//!
//! Events flow through all three for the whole test. A retraining job asked of all three at
//! once is claimed by exactly one (two 409s name it) and its progress reads the same from every
//! instance; its model is live on all three within a bounded time, every file with the same
//! bytes and ETag everywhere (the bundles are in the database). A second job's instance is
//! SIGKILLed while it trains: the old model stays live, another instance takes the job over
//! once its lease expired and finishes it, and the new model is live on the survivors. At the
//! end every acknowledged event is stored, exactly once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sessionrank_core::bundle::sha256_hex;
use sessionrank_server::client::Client;
use tokio::process::Child;

use crate::common::*;
use crate::durability::{admin_get, start_with};

const INSTANCES: usize = 3;
const ITEMS: usize = 40;
const BATCH: usize = 20;

/// A tiny CPU model; each run ends on its time budget (a few seconds on 2 shared cores), and
/// a lease of 3 s so a dead instance's job is taken over quickly.
fn scale_toml() -> String {
    "[retrain]\ndevice = \"flex\"\nmax_eval_cases = 300\ntime_budget_s = 6\nlease_s = 3\n\
     tolerance = 100.0\nwarm_start = false\n\
     [retrain.train]\nbatch_size = 64\nvalid_cases = 200\nmax_epochs = 1000\npatience = 1000\n\
     id_dropout = 0.1\n\
     [retrain.train.model]\nd_model = 16\nn_layers = 1\nn_heads = 2\nd_ff = 64\nmax_len = 20\n"
        .to_string()
}

/// The instances: address, and whether it was killed.
struct Fleet {
    addrs: Vec<SocketAddr>,
    dead: Vec<AtomicBool>,
}

impl Fleet {
    /// Send to instance `first`, then the next ones, until one answers (skipping the dead).
    async fn send(
        &self,
        first: usize,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (usize, u16, Vec<u8>) {
        let start = Instant::now();
        for attempt in 0.. {
            let i = (first + attempt) % self.addrs.len();
            if self.dead[i].load(Ordering::SeqCst) {
                continue;
            }
            if let Ok(mut c) = Client::connect(self.addrs[i]).await
                && let Ok(r) = c.send(method, path, headers, body.to_vec()).await
                && r.status < 500
            {
                return (i, r.status, r.body.to_vec());
            }
            assert!(start.elapsed() < Duration::from_secs(60), "no instance answers {path}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        unreachable!("the loop returns or panics")
    }

    async fn admin_get(&self, i: usize, path: &str) -> Value {
        let mut c = Client::connect(self.addrs[i]).await.expect("connect");
        admin_get(&mut c, path).await
    }

    fn alive(&self) -> Vec<usize> {
        (0..self.addrs.len()).filter(|&i| !self.dead[i].load(Ordering::SeqCst)).collect()
    }
}

/// Ingest through every instance in turn until `stop`: batches of [`BATCH`] events, each with
/// its idempotency key, retried on the next instance until acknowledged. Counts what was
/// acknowledged.
fn spawn_ingest(
    fleet: Arc<Fleet>,
    worker: usize,
    acked: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let auth = format!("Bearer {INGEST_KEY}");
        for n in 0usize.. {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            // Four sessions of five events, each walking forward through the items.
            let events: Vec<Value> = (0..BATCH)
                .map(|j| {
                    let s = n * 4 + j / 5;
                    json!({
                        "session_id": format!("w{worker}-s{s}"),
                        "item_id": format!("i{}", (s * 7 + worker + j % 5) % ITEMS),
                        "type": "view",
                        "timestamp": 1_700_000_000 + (s * 10 + j % 5) as i64,
                    })
                })
                .collect();
            let body = serde_json::to_vec(&json!({"events": events})).unwrap_or_default();
            let key = format!("w{worker}-{n}");
            let headers = [
                ("content-type", "application/json"),
                ("idempotency-key", key.as_str()),
                ("authorization", auth.as_str()),
            ];
            let (_, status, answer) =
                fleet.send(worker + n, "POST", "/v1/events", &headers, &body).await;
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
            acked.fetch_add(BATCH as u64, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    })
}

/// Poll until every live instance serves `version` as its live model; the time it took.
async fn wait_live_everywhere(fleet: &Fleet, version: &str, timeout: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let mut all = true;
        for i in fleet.alive() {
            let mut c = Client::connect(fleet.addrs[i]).await.expect("connect");
            let r = c.get("/v1/models/current").await.expect("current");
            all &= r.status == 200 && r.json().ok().is_some_and(|m| m["model_version"] == version);
        }
        if all {
            return start.elapsed();
        }
        assert!(start.elapsed() < timeout, "{version} not live everywhere after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every file of `version` (full and browser bundle) has the same bytes and ETag on every
/// live instance.
async fn same_bytes_everywhere(fleet: &Fleet, version: &str) {
    let alive = fleet.alive();
    let mut c = Client::connect(fleet.addrs[alive[0]]).await.expect("connect");
    let full = c.get(&format!("/v1/models/{version}/manifest.json")).await.expect("manifest");
    let browser =
        c.get(&format!("/v1/models/{version}/browser/manifest.json")).await.expect("manifest");
    let mut paths = vec!["manifest.json".to_string(), "browser/manifest.json".to_string()];
    for (prefix, m) in
        [("", full.json().expect("json")), ("browser/", browser.json().expect("json"))]
    {
        for name in m["files"].as_object().expect("files").keys() {
            paths.push(format!("{prefix}{name}"));
        }
    }
    for path in &paths {
        let mut seen = None;
        for &i in &alive {
            let mut c = Client::connect(fleet.addrs[i]).await.expect("connect");
            let r = c.get(&format!("/v1/models/{version}/{path}")).await.expect("file");
            assert_eq!(r.status, 200, "instance {i}: {path}");
            let got = (sha256_hex(&r.body), r.header("etag").map(String::from));
            match &seen {
                None => seen = Some(got),
                Some(s) => assert_eq!(*s, got, "instance {i} serves {version}/{path} alike"),
            }
        }
    }
}

/// Wait for job `id` to finish, reading it from every live instance in turn (each must show
/// it); calls `while_running` with each running record.
async fn wait_job(
    fleet: &Fleet,
    id: &str,
    timeout: Duration,
    mut while_running: impl FnMut(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    for n in 0usize.. {
        let alive = fleet.alive();
        let job = fleet.admin_get(alive[n % alive.len()], &format!("/admin/jobs/{id}")).await;
        if job["state"] != "running" {
            return job;
        }
        if !while_running(&job) {
            return job;
        }
        assert!(start.elapsed() < timeout, "job {id} still running after {timeout:?}: {job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    unreachable!("the loop returns or panics")
}

/// POST /admin/retrain to every instance at once: exactly one 202; the others' 409s name it.
async fn retrain_once(fleet: &Arc<Fleet>) -> (usize, String) {
    let asks: Vec<_> = fleet
        .alive()
        .into_iter()
        .map(|i| {
            let addr = fleet.addrs[i];
            tokio::spawn(async move {
                let mut c = Client::connect(addr).await.expect("connect");
                let r = c
                    .json("POST", "/admin/retrain", &json!(null), Some(TOKEN))
                    .await
                    .expect("retrain");
                (i, r.status, r.json().expect("json"))
            })
        })
        .collect();
    let mut answers = Vec::new();
    for a in asks {
        answers.push(a.await.expect("task"));
    }
    let accepted: Vec<_> = answers.iter().filter(|(_, s, _)| *s == 202).collect();
    assert_eq!(accepted.len(), 1, "exactly one instance claims the job: {answers:?}");
    let (claimer, _, job) = accepted[0];
    let id = job["id"].as_str().expect("id").to_string();
    for (i, status, body) in &answers {
        if *i != *claimer {
            assert_eq!(*status, 409, "{body}");
            assert_eq!(body["job_id"], id.as_str(), "the 409 names the running job");
        }
    }
    (*claimer, id)
}

pub async fn three_instances_on_one_database(url: String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("scale.toml");
    std::fs::write(&config, scale_toml()).expect("write config");
    let mut children: Vec<Child> = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..INSTANCES {
        let (child, addr) =
            start_with(&dir.path().join(format!("data-{i}")), Some(&url), Some(&config)).await;
        children.push(child);
        addrs.push(addr);
    }
    let fleet =
        Arc::new(Fleet { addrs, dead: (0..INSTANCES).map(|_| AtomicBool::new(false)).collect() });
    let instances: Vec<String> = {
        let mut v = Vec::new();
        for i in 0..INSTANCES {
            v.push(
                fleet.admin_get(i, "/admin/stats").await["instance"]
                    .as_str()
                    .expect("name")
                    .to_string(),
            );
        }
        v
    };
    let mut c = Client::connect(fleet.addrs[0]).await.expect("connect");
    let r = c.json("PUT", "/v1/items", &items_json(ITEMS), Some(INGEST_KEY)).await.expect("items");
    assert_eq!(r.status, 200);

    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..INSTANCES)
        .map(|w| spawn_ingest(fleet.clone(), w, acked.clone(), stop.clone()))
        .collect();
    let start = Instant::now();
    while acked.load(Ordering::SeqCst) < 1500 {
        assert!(start.elapsed() < Duration::from_secs(60), "ingest is too slow");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // One job, claimed by one instance, visible from all; its model live on all three.
    let (claimer, id) = retrain_once(&fleet).await;
    let job = wait_job(&fleet, &id, Duration::from_secs(180), |job| {
        assert_eq!(job["owner"], instances[claimer].as_str(), "{job}");
        true
    })
    .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["published"], true, "{job}");
    let v1 = job["model_version"].as_str().expect("version").to_string();
    let visible = wait_live_everywhere(&fleet, &v1, Duration::from_secs(10)).await;
    eprintln!(
        "{v1} live on all {INSTANCES} instances {} ms after its job finished",
        visible.as_millis()
    );
    same_bytes_everywhere(&fleet, &v1).await;
    for i in 0..INSTANCES {
        let j = fleet.admin_get(i, &format!("/admin/jobs/{id}")).await;
        assert_eq!(
            (j["state"].clone(), j["model_version"].clone()),
            (job["state"].clone(), job["model_version"].clone()),
            "instance {i}"
        );
    }

    // A second job; its instance is SIGKILLed while it trains.
    let (claimer, id) = retrain_once(&fleet).await;
    let job =
        wait_job(&fleet, &id, Duration::from_secs(120), |job| job["stage"] != "training").await;
    assert_eq!(job["state"], "running", "killed before it finished: {job}");
    assert_eq!(job["owner"], instances[claimer].as_str());
    children[claimer].start_kill().expect("SIGKILL");
    children[claimer].wait().await.expect("the instance exits");
    fleet.dead[claimer].store(true, Ordering::SeqCst);
    let killed_at = Instant::now();
    for i in fleet.alive() {
        let m = fleet.admin_get(i, "/admin/stats").await;
        assert_eq!(m["live_model"], v1.as_str(), "the old model stays live");
    }
    let mut taken_over = None;
    let job = wait_job(&fleet, &id, Duration::from_secs(180), |job| {
        if taken_over.is_none() && job["owner"] != instances[claimer].as_str() {
            taken_over = Some(killed_at.elapsed());
        }
        true
    })
    .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["published"], true, "{job}");
    assert_eq!(job["attempts"], 2, "{job}");
    assert_ne!(job["owner"], instances[claimer].as_str(), "{job}");
    assert_eq!(job["taken_over_from"], instances[claimer].as_str(), "{job}");
    eprintln!(
        "job {id} taken over {:?} after the kill (lease 3 s), finished {:?} after it",
        taken_over,
        killed_at.elapsed()
    );
    let v2 = job["model_version"].as_str().expect("version").to_string();
    assert_ne!(v1, v2);
    wait_live_everywhere(&fleet, &v2, Duration::from_secs(10)).await;
    same_bytes_everywhere(&fleet, &v2).await;

    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.expect("an ingest worker failed");
    }
    let acked = acked.load(Ordering::SeqCst);
    let stats = fleet.admin_get(fleet.alive()[0], "/admin/stats").await;
    assert_eq!(stats["events"].as_u64(), Some(acked), "every acknowledged event, exactly once");
    eprintln!("{acked} events acknowledged through {INSTANCES} instances, all stored once");
    for mut child in children {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}
