//! Bounded work: limits before work (a vectors query of 17,000 ids), per-route body limits,
//! the header-read timeout (slow loris), the connection cap, and a shutdown deadline that a
//! running retraining does not outlast.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::json;
use sessionrank_server::client::Client;
use sessionrank_server::serve::serve;
use sessionrank_server::{AppState, Config, app};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::*;
use crate::durability::{admin_get, retrain_toml, start_retrain, start_with};

async fn sqlite_state(configure: impl FnOnce(&mut Config)) -> (tempfile::TempDir, AppState) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    configure(&mut config);
    (dir, open(config).await)
}

/// 17,000 ids, by GET and by POST: 422 naming `ids`, the fastest of 20 tries under 1 ms
/// (through the whole router: the count comes before decoding, parsing or any lookup).
#[tokio::test]
async fn a_vectors_query_of_17000_ids_is_refused_before_any_work() {
    let (_dir, state) = sqlite_state(|_| {}).await;
    state.models.publish(tiny_bundle("v1"), true).await.expect("publish");
    let router = app(state);
    let ids: Vec<String> = (0..17_000).map(|i| format!("item-{i}")).collect();
    // A URI holds at most 64 KiB: short ids (repeats count towards the limit too).
    let short: Vec<String> = (0..17_000).map(|i| (i % 100).to_string()).collect();
    let get_uri = format!("/v1/models/v1/vectors?ids={}", short.join(","));
    let post_body = json!({ "ids": ids }).to_string();
    let json_type = [("content-type", "application/json")];
    let (mut get_best, mut post_best) = (Duration::MAX, Duration::MAX);
    for _ in 0..20 {
        let t = Instant::now();
        let r = call(&router, "GET", &get_uri, &[], "").await;
        get_best = get_best.min(t.elapsed());
        assert_eq!((r.status, r.field().as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "ids"));
        let t = Instant::now();
        let r = call(&router, "POST", "/v1/models/v1/vectors", &json_type, post_body.clone()).await;
        post_best = post_best.min(t.elapsed());
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
        assert_eq!(r.field(), "ids");
    }
    eprintln!("17,000 ids refused in {get_best:?} (GET), {post_best:?} (POST)");
    assert!(get_best < Duration::from_millis(1), "GET: {get_best:?}");
    assert!(post_best < Duration::from_millis(1), "POST: {post_best:?}");
}

#[tokio::test]
async fn the_vectors_post_has_its_own_body_limit() {
    let (_dir, state) = sqlite_state(|_| {}).await;
    state.models.publish(tiny_bundle("v1"), true).await.expect("publish");
    let router = app(state);
    let ids = vec!["x".repeat(200); 3000];
    let big = json!({ "ids": ids }).to_string();
    assert!(big.len() > 512 << 10 && big.len() < 4 << 20, "between the two limits");
    let r = call(
        &router,
        "POST",
        "/v1/models/v1/vectors",
        &[("content-type", "application/json")],
        big,
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.body);
    assert!(r.json()["error"].as_str().unwrap_or("").contains("524288"), "{:?}", r.body);
}

/// A server on 127.0.0.1:0; `stop` ends it.
async fn running(
    configure: impl FnOnce(&mut Config),
) -> (tempfile::TempDir, std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let (dir, state) = sqlite_state(configure).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, state, async {
        let _ = stopped.await;
    }));
    (dir, addr, stop)
}

/// Read until the peer closes; how long that took (`None`: still open after `within`).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((start + within).into(), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn a_slow_loris_connection_is_closed_after_the_header_timeout() {
    let (_dir, addr, _stop) = running(|c| c.header_read_timeout = Duration::from_secs(1)).await;
    // Half a request head, then silence.
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.expect("write");
    let closed = closed_within(&mut slow, Duration::from_secs(5)).await;
    eprintln!("slow-loris connection closed after {closed:?}");
    assert!(closed.is_some_and(|t| t >= Duration::from_millis(900)), "{closed:?}");
    // A connection that never sends anything, and an idle kept-alive one, too.
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    assert!(closed_within(&mut silent, Duration::from_secs(5)).await.is_some());
    let mut c = Client::connect(addr).await.expect("connect");
    assert_eq!(c.get("/healthz").await.expect("healthz").status, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(c.get("/healthz").await.is_err(), "the idle connection was closed");
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let (_dir, addr, _stop) = running(|c| c.max_connections = 2).await;
    let mut first = Client::connect(addr).await.expect("connect");
    let mut second = Client::connect(addr).await.expect("connect");
    assert_eq!(first.get("/healthz").await.expect("first").status, 200);
    assert_eq!(second.get("/healthz").await.expect("second").status, 200);
    let third = tokio::spawn(async move {
        let mut c = Client::connect(addr).await.expect("the kernel accepts it");
        c.get("/healthz").await.map(|r| r.status)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!third.is_finished(), "a third connection is not served while two are open");
    drop(first);
    let status = tokio::time::timeout(Duration::from_secs(5), third).await;
    assert!(matches!(status, Ok(Ok(Ok(200)))), "{status:?}");
    assert_eq!(second.get("/healthz").await.expect("second").status, 200);
}

/// SIGTERM while a job trains: the process exits within the deadline (the training is
/// cancelled, not waited for), the job is recorded as cancelled, the live model unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_retrain_exits_within_the_deadline_with_the_old_model_live() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let (quick, slow) = (dir.path().join("quick.toml"), dir.path().join("slow.toml"));
    let deadline = 5;
    std::fs::write(&quick, retrain_toml(1)).expect("write config");
    std::fs::write(&slow, format!("shutdown_deadline_s = {deadline}\n{}", retrain_toml(10_000)))
        .expect("write config");

    let (mut child, addr) = start_with(&data_dir, None, Some(&quick)).await;
    let mut c = Client::connect(addr).await.expect("connect");
    let r = c.json("PUT", "/v1/items", &items_json(100), Some(INGEST_KEY)).await.expect("items");
    assert_eq!(r.status, 200);
    let r = c
        .json("POST", "/v1/events", &events_json(1500, 100, 0), Some(INGEST_KEY))
        .await
        .expect("events");
    assert_eq!(r.status, 200);
    let id = start_retrain(&mut c).await;
    let start = Instant::now();
    let job = loop {
        let job = admin_get(&mut c, &format!("/admin/jobs/{id}")).await;
        if job["state"] != "running" {
            break job;
        }
        assert!(start.elapsed() < Duration::from_secs(300), "quick job still running: {job}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let live = job["model_version"].as_str().expect("version").to_string();
    assert_eq!(job["published"], true, "{job}");
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("exits");

    let (mut child, addr) = start_with(&data_dir, None, Some(&slow)).await;
    let mut c = Client::connect(addr).await.expect("connect");
    let id = start_retrain(&mut c).await;
    let start = Instant::now();
    loop {
        let job = admin_get(&mut c, &format!("/admin/jobs/{id}")).await;
        if job["stage"] == "training" && job["metrics"]["training"]["step"].as_u64() > Some(0) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(300), "not training: {job}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(c);
    let pid = child.id().expect("pid").to_string();
    let sent = Instant::now();
    let kill = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(deadline + 5), child.wait())
        .await
        .expect("the server exits within the deadline")
        .expect("wait");
    let took = sent.elapsed();
    eprintln!("SIGTERM during training: exited in {took:?} ({status})");
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(deadline), "{took:?}");

    let (_child, addr) = start_with(&data_dir, None, Some(&slow)).await;
    let mut c = Client::connect(addr).await.expect("connect after restart");
    let current = c.get("/v1/models/current").await.expect("current").json().expect("json");
    assert_eq!(current["model_version"], live.as_str(), "the old model is live");
    let job = admin_get(&mut c, &format!("/admin/jobs/{id}")).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(job["reason"].as_str().is_some_and(|r| r.contains("cancelled")), "{job}");
}
