//! `sessionrank-soak`: minutes of mixed load against a real `sessionrank serve` on SQLite,
//! reported as JSON (`results/soak.json`): errors, the server's resident memory (peak and at
//! the end) and the p99 latency per route.
//!
//! ```text
//! sessionrank-soak --sessionrank target/release/sessionrank --seconds 600 > results/soak.json
//! ```
//!
//! It starts the server itself (a fresh data directory under the system's temporary one, an
//! admin token and an ingest key of its own, a small retraining model), uploads a dataset's
//! catalog, stores `--seed-events` of its sessions and trains a first model. Then, for
//! `--seconds`, at fixed rates: events in batches of 100 (`POST /v1/events`), candidate pages
//! (`GET /v1/candidates`), vectors of a page's items (`GET /v1/models/{v}/vectors`), the live
//! browser manifest and its files (`GET /v1/models/current/browser`,
//! `GET /v1/models/{v}/browser/{file}`); halfway it starts one retraining and follows it.
//! An error is an answer other than 2xx or 304, or a failed request. The server's resident
//! memory is read from `/proc/<pid>/status` every second.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use serde_json::{Value, json};
use sessionrank_data::import::import_named;
use sessionrank_data::{Dataset, EventKind, default_data_dir};
use sessionrank_server::client::Client;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::Mutex;

#[derive(Debug, Parser)]
#[command(name = "sessionrank-soak", verbatim_doc_comment)]
struct Args {
    /// The `sessionrank` binary to run.
    #[arg(long, default_value = "sessionrank")]
    sessionrank: PathBuf,
    /// Dataset whose catalog and sessions are used.
    #[arg(long, default_value = "diginetica")]
    dataset: String,
    /// Directory holding the datasets (default: $SESSIONRANK_DATA_DIR or ../shared/data).
    #[arg(long, env = "SESSIONRANK_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// How long the mixed load runs.
    #[arg(long, default_value_t = 600)]
    seconds: u64,
    /// Events stored before the first model is trained.
    #[arg(long, default_value_t = 100_000)]
    seed_events: usize,
    /// Events per second during the soak (batches of 100).
    #[arg(long, default_value_t = 2000)]
    events_per_s: u64,
    /// Candidate pages per second.
    #[arg(long, default_value_t = 20)]
    pages_per_s: u64,
    /// Vector queries per second (the ids of a page).
    #[arg(long, default_value_t = 10)]
    vectors_per_s: u64,
    /// Browser-bundle downloads (manifest and every file) per second.
    #[arg(long, default_value_t = 2)]
    bundles_per_s: u64,
}

/// The retraining the soak runs: a small model, so a job takes a minute on two busy cores.
const CONFIG: &str = r#"
[retrain]
device = "flex"
time_budget_s = 120
max_sessions = 50000

[retrain.train]
max_epochs = 2
batch_size = 256
valid_cases = 2000

[retrain.train.model]
d_model = 32
n_layers = 1
n_heads = 2
d_ff = 64
max_len = 20
"#;

const ADMIN_TOKEN: &str = "soak-admin-token-0123456789abcdef";
const INGEST_KEY: &str = "soak-ingest-key-0123456789abcdef";

/// Latencies and errors per route.
#[derive(Default)]
struct Routes {
    latencies: Mutex<std::collections::BTreeMap<&'static str, Vec<f32>>>,
    errors: AtomicU64,
    error_lines: AtomicU64,
}

impl Routes {
    async fn record(&self, route: &'static str, sent: Instant, reply: &anyhow::Result<Reply>) {
        let ms = sent.elapsed().as_secs_f32() * 1000.0;
        self.latencies.lock().await.entry(route).or_default().push(ms);
        let problem = match reply {
            Ok(r) if (200..300).contains(&r.status) || r.status == 304 => None,
            Ok(r) => Some(format!("HTTP {}: {}", r.status, String::from_utf8_lossy(&r.body))),
            Err(e) => Some(format!("{e:#}")),
        };
        if let Some(p) = problem {
            self.errors.fetch_add(1, Ordering::Relaxed);
            if self.error_lines.fetch_add(1, Ordering::Relaxed) < 10 {
                eprintln!("{route}: {p}");
            }
        }
    }
}

type Reply = sessionrank_server::client::Reply;

fn kind_name(k: EventKind) -> &'static str {
    match k {
        EventKind::View => "view",
        EventKind::AddToCart => "add_to_cart",
        EventKind::Purchase => "purchase",
    }
}

/// Request bodies of 100 events, in the dataset's session order.
fn batches(dataset: &Dataset) -> anyhow::Result<Vec<Bytes>> {
    let mut events = Vec::new();
    for s in &dataset.train {
        for (i, e) in s.events.iter().enumerate() {
            let Some(item) = dataset.catalog.get(e.item) else { continue };
            events.push(json!({
                "session_id": format!("soak-{}", s.id),
                "item_id": item.id,
                "type": kind_name(e.kind),
                "timestamp": e.timestamp.unwrap_or(1_700_000_000 + i as i64),
            }));
        }
    }
    anyhow::ensure!(!events.is_empty(), "the dataset has no events");
    events
        .chunks(100)
        .map(|c| Ok(Bytes::from(serde_json::to_vec(&json!({"events": c}))?)))
        .collect()
}

/// Resident memory of `pid` in bytes.
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The machine in words, and its load average now.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|m| m.trim().to_string())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / (1024.0 * 1024.0))
        .unwrap_or(0.0);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    format!("{cores} cores ({model}), {mem_gib:.0} GiB, SQLite WAL synchronous=FULL")
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Run `every` until `deadline`, one call per tick, on one connection.
async fn paced<F, Fut>(
    addr: std::net::SocketAddr,
    per_s: u64,
    deadline: Instant,
    mut every: F,
) -> anyhow::Result<()>
where
    F: FnMut(Client) -> Fut,
    Fut: std::future::Future<Output = Option<Client>>,
{
    if per_s == 0 {
        return Ok(());
    }
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_s as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut client = None;
    while Instant::now() < deadline {
        tick.tick().await;
        let c = match client.take() {
            Some(c) => c,
            None => Client::connect(addr).await?,
        };
        // A failed request drops its connection; the next tick opens another.
        client = every(c).await;
    }
    Ok(())
}

async fn wait_for_job(c: &mut Client, id: &str, timeout: Duration) -> anyhow::Result<Value> {
    let start = Instant::now();
    let auth = format!("Bearer {ADMIN_TOKEN}");
    loop {
        let r =
            c.send("GET", &format!("/admin/jobs/{id}"), &[("authorization", &auth)], "").await?;
        let job = r.json()?;
        if job["state"] != "running" {
            return Ok(job);
        }
        anyhow::ensure!(start.elapsed() < timeout, "job {id} still running after {timeout:?}");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn retrain(c: &mut Client) -> anyhow::Result<Value> {
    let r = c.json("POST", "/admin/retrain", &json!({}), Some(ADMIN_TOKEN)).await?;
    anyhow::ensure!(r.status == 202 || r.status == 200, "retrain: {} {:?}", r.status, r.body);
    let id = r.json()?["id"].as_str().context("a job id")?.to_string();
    wait_for_job(c, &id, Duration::from_secs(900)).await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let dataset = import_named(&args.dataset, &data_dir)
        .with_context(|| format!("importing {}", args.dataset))?
        .dataset;
    let bodies = Arc::new(batches(&dataset)?);
    let work = std::env::temp_dir().join(format!("sessionrank-soak-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let config = work.join("soak.toml");
    std::fs::write(&config, CONFIG)?;
    let mut server = tokio::process::Command::new(&args.sessionrank)
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(work.join("data"))
        .arg("--config")
        .arg(&config)
        .env("SESSIONRANK_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("SESSIONRANK_INGEST_KEYS", format!("soak:events,items:{INGEST_KEY}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", args.sessionrank.display()))?;
    let pid = server.id().context("the server's pid")?;
    let mut lines = BufReader::new(server.stdout.take().context("stdout")?).lines();
    let addr = loop {
        let line = lines.next_line().await?.context("the server exited before listening")?;
        if let Some(url) = line.strip_prefix("listening on ") {
            break sessionrank_server::client::loopback_addr(url.trim())?;
        }
    };
    let result = soak(&args, addr, pid, &dataset, bodies).await;
    server.start_kill().ok();
    server.wait().await.ok();
    std::fs::remove_dir_all(&work).ok();
    let report = result?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

async fn soak(
    args: &Args,
    addr: std::net::SocketAddr,
    pid: u32,
    dataset: &Dataset,
    bodies: Arc<Vec<Bytes>>,
) -> anyhow::Result<Value> {
    let mut c = Client::connect(addr).await?;
    for chunk in dataset.catalog.items().chunks(2000) {
        let items: Vec<_> = chunk
            .iter()
            .map(|it| {
                json!({
                    "id": it.id,
                    "text": it.text,
                    "category": it.category,
                    "price_level": it.price_level,
                })
            })
            .collect();
        let r = c.json("PUT", "/v1/items", &json!({"items": items}), Some(INGEST_KEY)).await?;
        anyhow::ensure!(r.status == 200, "PUT /v1/items: {}", r.status);
    }
    let seed = (args.seed_events / 100).clamp(1, bodies.len());
    let auth = format!("Bearer {INGEST_KEY}");
    for body in bodies.iter().take(seed) {
        let headers = [("content-type", "application/json"), ("authorization", auth.as_str())];
        let r = c.send("POST", "/v1/events", &headers, body.clone()).await?;
        anyhow::ensure!(r.status == 200, "seeding events: {}", r.status);
    }
    eprintln!(
        "{} items, {} seed batches stored; training the first model",
        dataset.catalog.len(),
        seed
    );
    let first = retrain(&mut c).await?;
    anyhow::ensure!(first["published"] == true, "the first model was not published: {first}");
    eprintln!("first model {}; soaking for {} s", first["model_version"], args.seconds);

    let routes = Arc::new(Routes::default());
    let load_start = load_average();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    let next = Arc::new(AtomicUsize::new(seed));
    let page_ids: Arc<Mutex<(String, Vec<String>)>> = Arc::default();
    let mut tasks = Vec::new();

    // Events: one connection per 1000 events/s.
    let ingest_connections = args.events_per_s.div_ceil(1000).max(1);
    for w in 0..ingest_connections {
        let (routes, bodies, next, auth) =
            (routes.clone(), bodies.clone(), next.clone(), auth.clone());
        let per_s = args.events_per_s / 100 / ingest_connections;
        tasks.push(tokio::spawn(paced(addr, per_s, deadline, move |mut c| {
            let (routes, bodies, next, auth) =
                (routes.clone(), bodies.clone(), next.clone(), auth.clone());
            async move {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let key = format!("soak-{w}-{n}");
                let headers = [
                    ("content-type", "application/json"),
                    ("authorization", auth.as_str()),
                    ("idempotency-key", key.as_str()),
                ];
                let sent = Instant::now();
                let r =
                    c.send("POST", "/v1/events", &headers, bodies[n % bodies.len()].clone()).await;
                routes.record("POST /v1/events", sent, &r).await;
                r.ok().map(|_| c)
            }
        })));
    }
    // Candidate pages (two page sizes), remembering the last page's ids for the vectors.
    {
        let (routes, page_ids) = (routes.clone(), page_ids.clone());
        let mut n = 0u64;
        tasks.push(tokio::spawn(paced(addr, args.pages_per_s, deadline, move |mut c| {
            let (routes, page_ids) = (routes.clone(), page_ids.clone());
            n += 1;
            let limit = if n.is_multiple_of(2) { 48 } else { 60 };
            async move {
                let sent = Instant::now();
                let r = c.get(&format!("/v1/candidates?limit={limit}")).await;
                routes.record("GET /v1/candidates", sent, &r).await;
                let page = r.as_ref().ok().and_then(|r| r.json().ok());
                if let Some(page) = page {
                    let version = page["model_version"].as_str().unwrap_or_default().to_string();
                    let ids = page["items"]
                        .as_array()
                        .map(|a| {
                            a.iter().filter_map(|it| it["id"].as_str()).map(String::from).collect()
                        })
                        .unwrap_or_default();
                    *page_ids.lock().await = (version, ids);
                }
                r.ok().map(|_| c)
            }
        })));
    }
    // Vectors of the last page's first 20 items.
    {
        let (routes, page_ids) = (routes.clone(), page_ids.clone());
        tasks.push(tokio::spawn(paced(addr, args.vectors_per_s, deadline, move |mut c| {
            let (routes, page_ids) = (routes.clone(), page_ids.clone());
            async move {
                let (version, ids) = page_ids.lock().await.clone();
                if version.is_empty() || ids.is_empty() {
                    return Some(c);
                }
                let ids: Vec<&str> = ids.iter().take(20).map(String::as_str).collect();
                let sent = Instant::now();
                let r = c.get(&format!("/v1/models/{version}/vectors?ids={}", ids.join(","))).await;
                routes.record("GET /v1/models/{v}/vectors", sent, &r).await;
                r.ok().map(|_| c)
            }
        })));
    }
    // The browser bundle: the live manifest, then each of its files.
    {
        let routes = routes.clone();
        tasks.push(tokio::spawn(paced(addr, args.bundles_per_s, deadline, move |mut c| {
            let routes = routes.clone();
            async move {
                let sent = Instant::now();
                let r = c.get("/v1/models/current/browser").await;
                routes.record("GET /v1/models/current/browser", sent, &r).await;
                let manifest = r.ok()?.json().ok()?;
                let version = manifest["model_version"].as_str()?.to_string();
                let files: Vec<String> = manifest["files"].as_object()?.keys().cloned().collect();
                for file in files {
                    let sent = Instant::now();
                    let r = c.get(&format!("/v1/models/{version}/browser/{file}")).await;
                    routes.record("GET /v1/models/{v}/browser/{file}", sent, &r).await;
                    r.ok()?;
                }
                Some(c)
            }
        })));
    }
    // Resident memory, every second.
    let rss = {
        tokio::spawn(async move {
            let (mut peak, mut last) = (0u64, 0u64);
            while Instant::now() < deadline {
                if let Some(b) = rss_bytes(pid) {
                    peak = peak.max(b);
                    last = b;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            (peak, last)
        })
    };
    // One retraining, halfway.
    tokio::time::sleep(Duration::from_secs(args.seconds / 2)).await;
    let retrain_started = start.elapsed().as_secs_f64();
    let second = retrain(&mut Client::connect(addr).await?).await?;
    eprintln!("retraining: {} ({})", second["state"], second["reason"]);
    for t in tasks {
        t.await??;
    }
    let (rss_peak, rss_end) = rss.await?;
    let seconds = start.elapsed().as_secs_f64();
    let mut p99 = serde_json::Map::new();
    let mut counts = serde_json::Map::new();
    for (route, mut ms) in std::mem::take(&mut *routes.latencies.lock().await) {
        ms.sort_by(f32::total_cmp);
        let at = ((ms.len() as f64 * 0.99).ceil() as usize).saturating_sub(1);
        let v = ms.get(at).copied().unwrap_or(0.0);
        p99.insert(route.into(), json!((v * 100.0).round() / 100.0));
        counts.insert(route.into(), json!(ms.len()));
    }
    let retrain_ok = second["state"] == "succeeded";
    let command: Vec<String> = std::env::args().collect();
    Ok(json!({
        "command": command.join(" "),
        "machine": machine(),
        "load_average": {"start": load_start, "end": load_average()},
        "seconds": (seconds * 10.0).round() / 10.0,
        "errors": routes.errors.load(Ordering::Relaxed) + u64::from(!retrain_ok),
        "rss_peak_bytes": rss_peak,
        "rss_end_bytes": rss_end,
        "p99_ms": p99,
        "requests": counts,
        "events_stored": (next.load(Ordering::Relaxed) - seed) * 100,
        "retrain": {
            "started_at_s": (retrain_started * 10.0).round() / 10.0,
            "state": second["state"],
            "published": second["published"],
            "reason": second["reason"],
            "train_sessions": second["metrics"]["train_sessions"],
        },
    }))
}
