//! The real server on 127.0.0.1:0: real data in (the Diginetica slice), retrain, download the
//! published bundle over HTTP, check every checksum, score a session with the native engine.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use burn::tensor::Device;
use serde_json::{Value, json};
use sessionrank_core::{Candidate, ModelBundle, Reranker, SessionEvent};
use sessionrank_data::import::import_named;
use sessionrank_server::client::Client;
use sessionrank_server::serve::serve;
use tokio::net::TcpListener;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_data_in_retrain_download_and_score() {
    let data = import_named("diginetica-slice", &sample_dir())
        .expect("the bundled Diginetica slice imports (tests/data)")
        .dataset;
    let dir = tempfile::tempdir().expect("tempdir");
    let state = open(test_config(dir.path())).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state, async {
        let _ = stopped.await;
    }));
    let mut c = Client::connect(addr).await.expect("connect");

    // Catalog, then every training session's events in batches.
    put_catalog(&mut c, &data.catalog).await;
    let events = training_events(&data, usize::MAX);
    let mut sent = 0;
    for (n, chunk) in events.chunks(1000).enumerate() {
        let key = format!("e2e-{n}");
        let body = serde_json::to_vec(&json!({"events": chunk})).expect("json");
        let r = c
            .send(
                "POST",
                "/v1/events",
                &[
                    ("content-type", "application/json"),
                    ("idempotency-key", &key),
                    ("authorization", &format!("Bearer {INGEST_KEY}")),
                ],
                body,
            )
            .await
            .expect("POST events");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        sent += chunk.len();
    }
    let stats = c
        .json("GET", "/admin/stats", &json!(null), Some(TOKEN))
        .await
        .expect("stats")
        .json()
        .expect("json");
    assert_eq!(stats["events"], sent as u64);
    assert_eq!(stats["items"], data.catalog.len() as u64);
    eprintln!("ingested {sent} events, {} items", data.catalog.len());

    // Retrain; a second request while it runs is a 409 naming the job.
    let r = c
        .send("POST", "/admin/retrain", &[("authorization", &format!("Bearer {TOKEN}"))], "")
        .await
        .expect("retrain");
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json().expect("json")["id"].as_str().expect("id").to_string();
    let r = c
        .send("POST", "/admin/retrain", &[("authorization", &format!("Bearer {TOKEN}"))], "")
        .await
        .expect("retrain");
    assert_eq!(r.status, 409);
    assert_eq!(r.json().expect("json")["job_id"], id.as_str());
    let start = Instant::now();
    let job = loop {
        let j = c
            .send(
                "GET",
                &format!("/admin/jobs/{id}"),
                &[("authorization", &format!("Bearer {TOKEN}"))],
                "",
            )
            .await
            .expect("job")
            .json()
            .expect("json");
        if j["state"] != "running" {
            break j;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "job still running: {j}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    eprintln!("job: {}", serde_json::to_string_pretty(&job).unwrap_or_default());
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["published"], true, "{job}");
    assert!(job["metrics"]["holdout"]["new"]["cases"].as_u64().is_some_and(|n| n > 0), "{job}");
    let version = job["model_version"].as_str().expect("version").to_string();

    // The new manifest, and every file with a matching checksum.
    let r = c.get("/v1/models/current").await.expect("current");
    assert_eq!(r.status, 200);
    let manifest_bytes = r.body.clone();
    let manifest: Value = r.json().expect("json");
    assert_eq!(manifest["model_version"], version.as_str());
    let mut files = BTreeMap::new();
    for (name, entry) in manifest["files"].as_object().expect("files") {
        let r = c.get(&format!("/v1/models/{version}/{name}")).await.expect("file");
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(r.header("cache-control"), Some("public, max-age=31536000, immutable"));
        assert_eq!(
            sessionrank_core::bundle::sha256_hex(&r.body),
            entry["sha256"].as_str().expect("sha"),
            "{name}"
        );
        files.insert(name.clone(), r.body.to_vec());
    }
    let bundle =
        ModelBundle::from_parts(&manifest_bytes, files).expect("the downloaded bundle verifies");
    let reranker = Reranker::from_bundle(&bundle, &Device::flex()).expect("the engine builds");
    let session = &data.train[0];
    let observed: Vec<SessionEvent> = session
        .events
        .iter()
        .map(|e| SessionEvent {
            item_id: data.catalog.get(e.item).map(|i| i.id.clone()).unwrap_or_default(),
            kind: e.kind,
            timestamp: e.timestamp,
            content: None,
            vector: None,
        })
        .collect();
    let candidates: Vec<Candidate> = data
        .catalog
        .items()
        .iter()
        .take(50)
        .map(|it| Candidate {
            item_id: it.id.clone(),
            content: None,
            vector: None,
            available: true,
        })
        .collect();
    let ranking = reranker.rerank(&observed, &candidates).expect("rerank");
    assert!(ranking.personalised);
    assert_eq!(ranking.items.len(), 50);
    assert!(ranking.items.iter().all(|i| i.score.is_finite()));

    // Vectors of the new model for a page of candidates.
    let ids: Vec<&str> = candidates.iter().take(20).map(|c| c.item_id.as_str()).collect();
    let r = c
        .get(&format!("/v1/models/{version}/vectors?ids={}", ids.join(",")))
        .await
        .expect("vectors");
    assert_eq!(r.status, 200);
    assert_eq!(r.json().expect("json")["vectors"].as_array().map(Vec::len), Some(20));

    // What a browser does: the browser bundle, and the candidate page's vectors for the page
    // and for the session's items. It ranks the page as the full bundle does.
    let r = c.get("/v1/models/current/browser").await.expect("browser manifest");
    assert_eq!(r.status, 200);
    let browser_manifest = r.body.clone();
    let mut files = BTreeMap::new();
    for (name, entry) in r.json().expect("json")["files"].as_object().expect("files") {
        let r = c.get(&format!("/v1/models/{version}/browser/{name}")).await.expect("file");
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(
            sessionrank_core::bundle::sha256_hex(&r.body),
            entry["sha256"].as_str().expect("sha"),
            "{name}"
        );
        files.insert(name.clone(), r.body.to_vec());
    }
    let browser = Reranker::from_bundle(
        &ModelBundle::from_parts(&browser_manifest, files).expect("the browser bundle verifies"),
        &Device::flex(),
    )
    .expect("the browser engine builds");
    let page = c.get("/v1/candidates?limit=60").await.expect("candidates").json().expect("json");
    assert_eq!(page["model_version"], version.as_str());
    let vector_of = |it: &Value| {
        it["vector"]
            .as_array()
            .map(|v| v.iter().filter_map(Value::as_f64).map(|x| x as f32).collect::<Vec<f32>>())
    };
    let page_items = page["items"].as_array().expect("items");
    let full_candidates: Vec<Candidate> = page_items
        .iter()
        .map(|it| Candidate {
            item_id: it["id"].as_str().expect("id").into(),
            content: None,
            vector: None,
            available: true,
        })
        .collect();
    let browser_candidates: Vec<Candidate> = page_items
        .iter()
        .map(|it| Candidate {
            item_id: it["id"].as_str().expect("id").into(),
            content: None,
            vector: vector_of(it),
            available: true,
        })
        .collect();
    // A session over page items (clicks on the 3rd, 8th and 1st product).
    let clicks: Vec<SessionEvent> = [2usize, 7, 0]
        .iter()
        .enumerate()
        .map(|(j, &i)| SessionEvent {
            item_id: full_candidates[i].item_id.clone(),
            kind: sessionrank_data::EventKind::View,
            timestamp: Some(1_460_000_000 + j as i64),
            content: None,
            vector: None,
        })
        .collect();
    let with_vectors: Vec<SessionEvent> = clicks
        .iter()
        .zip([2usize, 7, 0])
        .map(|(e, i)| SessionEvent { vector: browser_candidates[i].vector.clone(), ..e.clone() })
        .collect();
    let order =
        |r: sessionrank_core::Ranking| r.items.into_iter().map(|i| i.item_id).collect::<Vec<_>>();
    let native = order(reranker.rerank(&clicks, &full_candidates).expect("full rerank"));
    assert_eq!(
        order(browser.rerank(&with_vectors, &browser_candidates).expect("browser rerank")),
        native,
        "browser bundle + page vectors = full bundle"
    );

    let _ = stop.send(());
    server.await.expect("server task").expect("server shuts down cleanly");
}

/// `sessionrank export`: the committed bundle to `<out>/<version>/` with its browser bundle in
/// `browser/` (the server's layout); `--browser` writes only that; both print the sizes.
#[test]
fn export_writes_the_version_with_its_browser_bundle_and_prints_sizes() {
    let repo = repo();
    let fixture = repo.join("tests/fixtures/bundle-slice");
    let version =
        ModelBundle::read_dir(&fixture).expect("the committed bundle reads").manifest.model_version;
    let out = tempfile::tempdir().expect("tempdir");
    let run = |extra: &[&str]| {
        let o = std::process::Command::new(sessionrank_bin())
            .arg("export")
            .arg(&fixture)
            .arg("--out")
            .arg(out.path())
            .args(extra)
            .output()
            .expect("sessionrank runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };

    let printed = run(&["--browser"]);
    let browser_dir = out.path().join(&version).join("browser");
    let browser =
        ModelBundle::read_dir(&browser_dir).expect("the exported browser bundle verifies");
    assert_eq!(browser.manifest.kind, sessionrank_core::BundleKind::Browser);
    assert_eq!(browser.manifest.model_version, version);
    assert!(
        !browser_dir.join("items.json").exists() && !browser_dir.join("tokenizer.json").exists()
    );
    for name in ["manifest.json", "weights.bpk", "categories.json", "total"] {
        assert!(
            printed
                .lines()
                .any(|l| l.trim_start().starts_with(name) && l.split_whitespace().count() == 3),
            "{name} with raw and gzip bytes:\n{printed}"
        );
    }

    let printed = run(&[]);
    ModelBundle::read_dir(&out.path().join(&version)).expect("the exported full bundle verifies");
    ModelBundle::read_dir(&browser_dir).expect("with its browser bundle");
    assert!(
        printed.contains("items.json") && printed.contains("categories.json"),
        "both bundles' sizes:\n{printed}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(out.path())
        .expect("lists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "no temporary directories: {leftovers:?}");
}
