//! `sessionrank-load`: replay real sessions into `POST /v1/events` and report throughput and
//! latency as JSON.
//!
//! ```text
//! sessionrank serve --listen 127.0.0.1:8080 --data-dir /tmp/sr &
//! sessionrank-load --url http://127.0.0.1:8080 --dataset diginetica --seconds 60 > results/ingest.json
//! ```
//!
//! Sessions come from a dataset under `../shared/data` (its training sessions, in file order);
//! the catalog is uploaded first (`PUT /v1/items`) so every event's item exists. Each of
//! `--connections` workers owns one keep-alive connection and sends batches of `--batch`
//! events, each with its own `Idempotency-Key`, flat out or (`--rate`) at a fixed total rate
//! of events per second. Only loopback URLs are accepted. The writes carry the ingest key
//! from `SESSIONRANK_INGEST_KEY` (an environment variable, never a flag: `ps` shows flags).
//!
//! Several instances (`--url a,b,c`): worker `w` sends to instance `w mod n` (client-side
//! round robin, what a load balancer does per connection). With `--publish-bundle DIR`, a
//! copy of that bundle under a fresh version name is then published and activated on the first
//! instance (`POST /admin/models`, the admin token from `SESSIONRANK_ADMIN_TOKEN`), and the
//! report adds `publish_visible_everywhere_ms`: from the publish's answer until every
//! instance's `/v1/models/current` names the new version (`scripts/scale-bench`).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::{ArgAction, Parser};
use serde_json::json;
use sessionrank_data::import::import_named;
use sessionrank_data::{Dataset, EventKind, default_data_dir};
use sessionrank_server::client::{Client, loopback_addr};

#[derive(Debug, Parser)]
#[command(name = "sessionrank-load", verbatim_doc_comment)]
struct Args {
    /// The service, on a loopback address; several instances of one service separated by
    /// commas (each worker keeps to one, in turn).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// After the load, publish a renamed copy of this bundle on the first instance and time
    /// until every instance serves it.
    #[arg(long, value_name = "DIR")]
    publish_bundle: Option<PathBuf>,
    /// Dataset whose sessions are replayed.
    #[arg(long, default_value = "diginetica")]
    dataset: String,
    /// Directory holding the datasets (default: $SESSIONRANK_DATA_DIR or ../shared/data).
    #[arg(long, env = "SESSIONRANK_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// How long to send.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Total events per second; 0 = flat out.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Events per request.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Upload the dataset's catalog first.
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    put_items: bool,
    /// At most this many events are prepared (then the replay starts over).
    #[arg(long, default_value_t = 500_000)]
    max_events: usize,
    /// Send every prepared event exactly once, then stop (loading a demo or a backfill)
    /// instead of replaying for `--seconds`.
    #[arg(long)]
    once: bool,
}

fn kind_name(k: EventKind) -> &'static str {
    match k {
        EventKind::View => "view",
        EventKind::AddToCart => "add_to_cart",
        EventKind::Purchase => "purchase",
    }
}

/// Request bodies, prepared before the clock starts.
fn batches(dataset: &Dataset, batch: usize, max_events: usize) -> anyhow::Result<Vec<Bytes>> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
    let mut events = Vec::new();
    'outer: for s in &dataset.train {
        for (i, e) in s.events.iter().enumerate() {
            let Some(item) = dataset.catalog.get(e.item) else { continue };
            events.push(json!({
                "session_id": format!("load-{}", s.id),
                "item_id": item.id,
                "type": kind_name(e.kind),
                "timestamp": e.timestamp.unwrap_or(now + i as i64),
            }));
            if events.len() >= max_events {
                break 'outer;
            }
        }
    }
    anyhow::ensure!(!events.is_empty(), "the dataset has no events");
    events
        .chunks(batch)
        .map(|c| Ok(Bytes::from(serde_json::to_vec(&json!({"events": c}))?)))
        .collect()
}

async fn put_items(
    client: &mut Client,
    dataset: &Dataset,
    key: Option<&str>,
) -> anyhow::Result<()> {
    for chunk in dataset.catalog.items().chunks(2000) {
        let items: Vec<_> =
            chunk.iter().map(|it| json!({"id": it.id, "text": it.text, "category": it.category, "price_level": it.price_level})).collect();
        let r = client.json("PUT", "/v1/items", &json!({"items": items}), key).await?;
        anyhow::ensure!(
            r.status == 200,
            "PUT /v1/items: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }
    Ok(())
}

/// Environment variable holding the ingest key the writes carry (scopes `events`, `items`).
const INGEST_KEY_ENV: &str = "SESSIONRANK_INGEST_KEY";

#[derive(Default)]
struct Totals {
    events: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let addrs: Vec<std::net::SocketAddr> =
        args.url.split(',').map(|u| loopback_addr(u.trim())).collect::<anyhow::Result<_>>()?;
    let addr = addrs[0];
    anyhow::ensure!(
        args.batch > 0 && args.connections > 0,
        "--batch and --connections must be positive"
    );
    let ingest_key = std::env::var(INGEST_KEY_ENV).ok().map(|k| k.trim().to_string());
    let auth = Arc::new(ingest_key.as_ref().map(|k| format!("Bearer {k}")));
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let dataset = import_named(&args.dataset, &data_dir)
        .with_context(|| format!("importing {}", args.dataset))?
        .dataset;
    let bodies = Arc::new(batches(&dataset, args.batch, args.max_events)?);
    eprintln!(
        "{} requests of up to {} events prepared from {}",
        bodies.len(),
        args.batch,
        args.dataset
    );
    if args.put_items {
        let mut c = Client::connect(addr).await?;
        put_items(&mut c, &dataset, ingest_key.as_deref()).await?;
        eprintln!("{} items uploaded", dataset.catalog.len());
    }
    let run_id = format!(
        "{:x}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos()
    );
    let next = Arc::new(AtomicUsize::new(0));
    let totals = Arc::new(Totals::default());
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    // Per connection: one request every `interval` keeps the total at `rate` events/s.
    let interval = (args.rate > 0).then(|| {
        Duration::from_secs_f64(args.batch as f64 * args.connections as f64 / args.rate as f64)
    });
    let mut workers = Vec::new();
    let once = args.once;
    for w in 0..args.connections {
        let (bodies, next, totals, run_id, auth) =
            (bodies.clone(), next.clone(), totals.clone(), run_id.clone(), auth.clone());
        let addr = addrs[w % addrs.len()];
        workers.push(tokio::spawn(async move {
            let mut latencies_ms: Vec<f32> = Vec::new();
            let mut client: Option<Client> = None;
            let mut tick = interval.map(|i| {
                let mut t = tokio::time::interval(i);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            while Instant::now() < deadline {
                if let Some(t) = tick.as_mut() {
                    t.tick().await;
                }
                let n = next.fetch_add(1, Ordering::Relaxed);
                if once && n >= bodies.len() {
                    break;
                }
                let body = bodies[n % bodies.len()].clone();
                let key = format!("{run_id}-{w}-{n}");
                if client.is_none() {
                    match Client::connect(addr).await {
                        Ok(c) => client = Some(c),
                        Err(_) => {
                            totals.errors.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    }
                }
                let Some(c) = client.as_mut() else { continue };
                let sent = Instant::now();
                let mut headers =
                    vec![("content-type", "application/json"), ("idempotency-key", key.as_str())];
                if let Some(a) = auth.as_deref() {
                    headers.push(("authorization", a));
                }
                let r = c.send("POST", "/v1/events", &headers, body.clone()).await;
                latencies_ms.push(sent.elapsed().as_secs_f32() * 1000.0);
                totals.requests.fetch_add(1, Ordering::Relaxed);
                match r {
                    Ok(reply) if reply.status == 200 => {
                        let accepted =
                            reply.json().ok().and_then(|v| v["accepted"].as_u64()).unwrap_or(0);
                        totals.events.fetch_add(accepted, Ordering::Relaxed);
                    }
                    Ok(reply) => {
                        totals.errors.fetch_add(1, Ordering::Relaxed);
                        if totals.errors.load(Ordering::Relaxed) <= 3 {
                            eprintln!(
                                "HTTP {}: {}",
                                reply.status,
                                String::from_utf8_lossy(&reply.body)
                            );
                        }
                    }
                    Err(e) => {
                        totals.errors.fetch_add(1, Ordering::Relaxed);
                        eprintln!("request failed: {e:#}");
                        client = None;
                    }
                }
            }
            latencies_ms
        }));
    }
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await?);
    }
    let seconds = start.elapsed().as_secs_f64();
    latencies.sort_by(f32::total_cmp);
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0.0)
    };
    let events = totals.events.load(Ordering::Relaxed);
    let command: Vec<String> = std::env::args().collect();
    let mut report = json!({
        "command": command.join(" "),
        "events_per_s": (events as f64 / seconds).round(),
        "p50_ms": (pct(0.50) * 100.0).round() / 100.0,
        "p99_ms": (pct(0.99) * 100.0).round() / 100.0,
        "errors": totals.errors.load(Ordering::Relaxed),
        "seconds": (seconds * 10.0).round() / 10.0,
        "events": events,
        "requests": totals.requests.load(Ordering::Relaxed),
        "batch": args.batch,
        "connections": args.connections,
        "rate": args.rate,
        "dataset": args.dataset,
        "instances": addrs.len(),
    });
    if let Some(dir) = &args.publish_bundle {
        let (publish_ms, visible_ms) = publish_and_watch(dir, &addrs).await?;
        report["publish_ms"] = json!((publish_ms * 10.0).round() / 10.0);
        report["publish_visible_everywhere_ms"] = json!((visible_ms * 10.0).round() / 10.0);
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Publish a copy of the bundle in `dir` under a fresh version on `addrs[0]` (activated), then
/// poll every instance's live manifest every 5 ms: how long the publish took, and how long
/// after its answer every instance served the new version.
async fn publish_and_watch(
    dir: &std::path::Path,
    addrs: &[std::net::SocketAddr],
) -> anyhow::Result<(f64, f64)> {
    let token = sessionrank_server::config::admin_token_from(
        std::env::var(sessionrank_server::config::ADMIN_TOKEN_ENV).ok(),
    )
    .context("--publish-bundle needs SESSIONRANK_ADMIN_TOKEN")?;
    let bundle = sessionrank_core::ModelBundle::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?;
    let mut manifest = bundle.manifest.clone();
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis();
    manifest.model_version = format!("scale-{stamp}");
    let version = manifest.model_version.clone();
    let renamed = sessionrank_core::ModelBundle::new(manifest, bundle.files);
    let archive = sessionrank_cli::publish::archive_of_bundle(&renamed)?;
    let mut c = Client::connect(addrs[0]).await?;
    let auth = format!("Bearer {token}");
    let sent = Instant::now();
    let r = c
        .send(
            "POST",
            "/admin/models?activate=true",
            &[("content-type", "application/x-tar"), ("authorization", &auth)],
            archive,
        )
        .await?;
    let publish_ms = sent.elapsed().as_secs_f64() * 1000.0;
    anyhow::ensure!(r.status == 201, "publish: {} {}", r.status, String::from_utf8_lossy(&r.body));
    let published = Instant::now();
    let mut clients = Vec::new();
    for a in addrs {
        clients.push(Client::connect(*a).await?);
    }
    let mut pending: Vec<usize> = (0..addrs.len()).collect();
    while !pending.is_empty() {
        anyhow::ensure!(
            published.elapsed() < Duration::from_secs(60),
            "{version} not live everywhere after 60 s"
        );
        let mut still = Vec::new();
        for i in pending {
            let r = clients[i].get("/v1/models/current").await?;
            let live = r.json().ok().is_some_and(|m| m["model_version"] == version.as_str());
            if !live {
                still.push(i);
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let visible_ms = published.elapsed().as_secs_f64() * 1000.0;
    eprintln!(
        "{version}: published in {publish_ms:.0} ms, live everywhere {visible_ms:.0} ms later"
    );
    Ok((publish_ms, visible_ms))
}
