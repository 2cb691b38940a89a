//! The router without a socket. Scenarios take an `AppState` so the `postgres` module runs
//! the same ones on PostgreSQL.

use std::time::Duration;

use axum::http::StatusCode;
use burn::tensor::Device;
use serde_json::{Value, json};
use sessionrank_core::bundle::sha256_hex;
use sessionrank_core::{
    BundleKind, Candidate, ItemContent, ModelBundle, Prepared, Reranker, SessionEvent,
};
use sessionrank_data::EventKind;
use sessionrank_server::app;
use sessionrank_server::{AppState, Config};

use crate::common::*;

async fn sqlite_state(configure: impl FnOnce(&mut Config)) -> (tempfile::TempDir, AppState) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    configure(&mut config);
    let state = open(config).await;
    (dir, state)
}

// --- scenarios ------------------------------------------------------------------------------

pub async fn events_are_stored_once_per_idempotency_key(state: AppState) {
    let app = app(state);
    assert_eq!(send_json(&app, "PUT", "/v1/items", &items_json(10)).await.status, StatusCode::OK);
    let body = events_json(3, 10, 0).to_string();
    let headers = [("content-type", "application/json"), ("idempotency-key", "batch-1")];
    let first = call(&app, "POST", "/v1/events", &headers, body.clone()).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(first.json(), json!({"accepted": 15}));
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = call(&app, "POST", "/v1/events", &headers, body.clone()).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json(), first.json());
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(stats(&app).await["events"], 15);
    // The same key with another body is refused and stores nothing.
    let other = call(&app, "POST", "/v1/events", &headers, events_json(1, 10, 7).to_string()).await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other.field(), "Idempotency-Key");
    // Without a key, a batch is stored each time.
    send_json(&app, "POST", "/v1/events", &events_json(1, 10, 0)).await;
    send_json(&app, "POST", "/v1/events", &events_json(1, 10, 0)).await;
    assert_eq!(stats(&app).await["events"], 25);
    let metrics = call(&app, "GET", "/metrics", &[], "").await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(text.contains("sessionrank_events_ingested_total{type=\"view\"} 20"), "{text}");
    assert!(text.contains("sessionrank_event_batches_replayed_total 1"), "{text}");
    assert!(
        text.contains(
            "sessionrank_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/events\"}"
        ),
        "{text}"
    );
}

pub async fn bad_events_are_rejected_naming_the_field_and_store_nothing(state: AppState) {
    let app = app(state);
    send_json(&app, "PUT", "/v1/items", &items_json(10)).await;
    let ok = |over: Value| {
        let mut e =
            json!({"session_id": "s", "item_id": "i1", "type": "view", "timestamp": 1_700_000_000});
        if let (Some(e), Some(over)) = (e.as_object_mut(), over.as_object()) {
            for (k, v) in over {
                if v.is_null() {
                    e.remove(k);
                } else {
                    e.insert(k.clone(), v.clone());
                }
            }
        }
        e
    };
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"events": [ok(json!({})), ok(json!({"type": "like"}))]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "events[1].type",
        ),
        (
            json!({"events": [ok(json!({})), ok(json!({})), ok(json!({"item_id": "nope"}))]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "events[2].item_id",
        ),
        (
            json!({"events": [ok(json!({"timestamp": "yesterday"}))]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "events[0].timestamp",
        ),
        (
            json!({"events": [ok(json!({"timestamp": 1_700_000_000_000i64}))]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "events[0].timestamp",
        ),
        (
            json!({"events": [ok(json!({"timestamp": null}))]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "events[0].timestamp",
        ),
        (
            json!({"events": [ok(json!({"session_id": 7}))]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "events[0].session_id",
        ),
        (
            json!({"events": [ok(json!({"session_id": " "}))]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "events[0].session_id",
        ),
        (
            json!({"events": [ok(json!({"colour": "red"}))]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "events[0].colour",
        ),
        (json!({"events": []}), StatusCode::UNPROCESSABLE_ENTITY, "events"),
        (json!({"event": []}), StatusCode::UNPROCESSABLE_ENTITY, "event"),
        (json!("a string"), StatusCode::UNPROCESSABLE_ENTITY, "body"),
    ];
    for (body, status, field) in cases {
        let r = send_json(&app, "POST", "/v1/events", &body).await;
        assert_eq!(r.status, status, "{body} → {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.field(), field, "{body} → {}", String::from_utf8_lossy(&r.body));
        assert!(r.json()["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    // Malformed JSON: 400 naming where it broke.
    let r = call(
        &app,
        "POST",
        "/v1/events",
        &[("content-type", "application/json")],
        "{\"events\": [{\"session_id\": \"s\",",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"].as_str().is_some_and(|e| e.starts_with("malformed JSON")));
    // Not JSON at all.
    let r = call(&app, "POST", "/v1/events", &[("content-type", "text/plain")], "hello").await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A bad idempotency key.
    let r = call(
        &app,
        "POST",
        "/v1/events",
        &[("content-type", "application/json"), ("idempotency-key", "has space")],
        events_json(1, 10, 0).to_string(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.field(), "Idempotency-Key");
    assert_eq!(stats(&app).await["events"], 0, "nothing partial was stored");
}

pub async fn items_are_validated_and_upserted(state: AppState) {
    let app = app(state);
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"items": [{"id": "a", "price": "NaN"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[0].price",
        ),
        (
            json!({"items": [{"id": "a", "price": 1.0}, {"id": "b", "price": -3.5}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[1].price",
        ),
        (
            json!({"items": [{"id": "a", "price": "inf"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[0].price",
        ),
        (
            json!({"items": [{"id": "a", "price": "cheap"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[0].price",
        ),
        (
            json!({"items": [{"id": "a", "price": true}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[0].price",
        ),
        (
            json!({"items": [{"id": "a", "price_level": 16}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[0].price_level",
        ),
        (
            json!({"items": [{"id": "a", "price": 3, "price_level": 2}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[0].price_level",
        ),
        (json!({"items": [{"id": ""}]}), StatusCode::UNPROCESSABLE_ENTITY, "items[0].id"),
        (
            json!({"items": [{"id": "a"}, {"id": "a"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[1].id",
        ),
        (json!({"items": [{"text": "no id"}]}), StatusCode::UNPROCESSABLE_ENTITY, "items[0].id"),
        (
            json!({"items": [{"id": "a", "text": 5}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "items[0].text",
        ),
        (json!({"items": []}), StatusCode::UNPROCESSABLE_ENTITY, "items"),
    ];
    for (body, status, field) in cases {
        let r = send_json(&app, "PUT", "/v1/items", &body).await;
        assert_eq!(r.status, status, "{body} → {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.field(), field, "{body} → {}", String::from_utf8_lossy(&r.body));
    }
    // A NaN literal is not JSON: 400, still naming the field.
    let r = call(
        &app,
        "PUT",
        "/v1/items",
        &[("content-type", "application/json")],
        r#"{"items": [{"id": "a", "price": NaN}]}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.field(), "items[0].price");
    assert_eq!(stats(&app).await["items"], 0, "nothing partial was stored");

    let r = send_json(&app, "PUT", "/v1/items", &json!({"items": [{"id": "a", "text": "red shoe", "category": "shoes", "price": "59.90"}, {"id": "b"}]})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.json(), json!({"upserted": 2}));
    let r = send_json(
        &app,
        "PUT",
        "/v1/items",
        &json!({"items": [{"id": "a", "text": "blue shoe", "price": 0}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(stats(&app).await["items"], 2, "an update does not add an item");
}

pub async fn candidates_are_the_most_interacted_items_first(state: AppState) {
    let app = app(state);
    assert_eq!(send_json(&app, "PUT", "/v1/items", &items_json(6)).await.status, StatusCode::OK);
    // i3 three times, i1 twice, i5 once; the rest never.
    let events: Vec<Value> = [("s1", "i3"), ("s1", "i1"), ("s2", "i3"), ("s2", "i5"), ("s3", "i3"), ("s3", "i1")]
        .iter()
        .enumerate()
        .map(|(n, (s, i))| json!({"session_id": s, "item_id": i, "type": "view", "timestamp": 1_700_000_000 + n as i64}))
        .collect();
    let r = send_json(&app, "POST", "/v1/events", &json!({"events": events})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    let r = call(&app, "GET", "/v1/candidates?limit=5", &[], "").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.header("cache-control"), Some("public, max-age=60"));
    let body = r.json();
    let ids: Vec<&str> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|it| it["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["i3", "i1", "i5", "i0", "i2"], "by event count, then catalog order");
    assert_eq!(body["items"][0]["events"], 3);
    assert_eq!(body["items"][0]["category"], "c3");
    assert_eq!(body["items"][0]["text"], "item 3 colour 3");
    assert_eq!(body["source"], "popularity");
    let r = call(&app, "GET", "/v1/candidates", &[], "").await;
    assert_eq!(
        r.json()["items"].as_array().expect("items").len(),
        6,
        "default limit covers the whole small catalog"
    );

    for bad in ["0", "1001", "ten", "-1"] {
        let r = call(&app, "GET", &format!("/v1/candidates?limit={bad}"), &[], "").await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "limit={bad}");
        assert_eq!(r.field(), "limit");
    }
    let r = call(&app, "GET", "/v1/candidates?lmit=3", &[], "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "unknown parameters are refused");
    // No live model: the page is served all the same, without vectors.
    let body = call(&app, "GET", "/v1/candidates?limit=2", &[], "").await.json();
    assert_eq!(body["model_version"], Value::Null);
    assert!(
        body["items"].as_array().expect("items").iter().all(|it| it.get("vector").is_none()),
        "{body}"
    );
}

/// The candidates' vectors are the live model's, as the native engine computes them in a
/// re-rank: items the model knows (`i0..i29`) and new ones encoded from the catalog's content
/// (`i30..i34`); `/v1/models/{version}/vectors` answers the same numbers.
pub async fn candidates_carry_the_live_models_vectors(state: AppState) {
    let router = app(state.clone());
    let bundle = tiny_bundle("20260101-000000-00000001");
    state.models.publish(bundle.clone(), true).await.expect("publish");
    assert_eq!(
        send_json(&router, "PUT", "/v1/items", &items_json(35)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send_json(&router, "POST", "/v1/events", &events_json(20, 35, 0)).await.status,
        StatusCode::OK
    );

    let r = call(&router, "GET", "/v1/candidates?limit=35", &[], "").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let page = r.json();
    assert_eq!(page["model_version"], "20260101-000000-00000001");
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 35);
    let d = bundle.manifest.config.d_model;
    let served: Vec<Vec<f32>> = items
        .iter()
        .map(|it| {
            it["vector"]
                .as_array()
                .expect("every candidate has a vector")
                .iter()
                .map(|x| x.as_f64().expect("number") as f32)
                .collect()
        })
        .collect();
    assert!(served.iter().all(|v| v.len() == d), "vectors of length d_model = {d}");

    // The native engine's item table of a re-rank over the same page: row 0 is padding, the
    // session's one event is candidate 0, so candidate i is row i + 1.
    let engine = Reranker::from_bundle(&bundle, &Device::flex()).expect("engine");
    let candidates: Vec<Candidate> = items
        .iter()
        .map(|it| Candidate {
            item_id: it["id"].as_str().expect("id").into(),
            content: Some(ItemContent {
                text: it["text"].as_str().unwrap_or_default().into(),
                category: it["category"].as_str().map(String::from),
                price_level: it["price_level"].as_u64().map(|p| p as u8),
            }),
            vector: None,
            available: true,
        })
        .collect();
    let session = [SessionEvent {
        item_id: candidates[0].item_id.clone(),
        kind: EventKind::View,
        timestamp: Some(1_700_000_000),
        content: None,
        vector: None,
    }];
    let Prepared::Pending(pending) = engine.prepare(&session, &candidates).expect("prepare") else {
        panic!("a session with an event is scored")
    };
    let (_, table) = pending.read().expect("table");
    assert_eq!(table.len(), (candidates.len() + 1) * d);
    for (i, v) in served.iter().enumerate() {
        let native = &table[(i + 1) * d..(i + 2) * d];
        let worst = v.iter().zip(native).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(
            worst <= 1e-6,
            "candidate {i} ({}): served vector differs from the engine's by {worst}",
            candidates[i].item_id
        );
    }
    let new_items: Vec<&str> = candidates
        .iter()
        .map(|c| c.item_id.as_str())
        .filter(|id| id[1..].parse::<usize>().is_ok_and(|n| n >= 30))
        .collect();
    assert_eq!(new_items.len(), 5, "the page holds the items the model has not seen");

    // The vectors route: one code path, the same numbers; new items come from the catalog.
    let ids: Vec<&str> = candidates.iter().map(|c| c.item_id.as_str()).collect();
    let r = call(
        &router,
        "GET",
        &format!("/v1/models/20260101-000000-00000001/vectors?ids={}", ids.join(",")),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=60"),
        "new items depend on the catalog"
    );
    let v = r.json();
    let mut from_content: Vec<&str> = v["from_content"]
        .as_array()
        .expect("from_content")
        .iter()
        .map(|x| x.as_str().expect("id"))
        .collect();
    from_content.sort();
    let mut expected = new_items.clone();
    expected.sort();
    assert_eq!(from_content, expected);
    assert_eq!(v["missing"], json!([]));
    for (entry, page_vector) in v["vectors"].as_array().expect("vectors").iter().zip(&served) {
        let vector: Vec<f32> = entry["vector"]
            .as_array()
            .expect("vector")
            .iter()
            .map(|x| x.as_f64().expect("number") as f32)
            .collect();
        assert_eq!(&vector, page_vector, "{}", entry["item_id"]);
    }

    // The same list in a POST body (a shop's own search results): the same vectors, repeats
    // answered once in first-seen order, never cached.
    let mut posted: Vec<&str> = ids.clone();
    posted.extend(ids.iter().rev().take(3));
    let r = send_json(
        &router,
        "POST",
        "/v1/models/20260101-000000-00000001/vectors",
        &json!({ "ids": posted }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let p = r.json();
    assert_eq!(p["vectors"], v["vectors"], "POST and GET give the same vectors, same order");
    assert_eq!(p["from_content"], v["from_content"]);
    assert_eq!(p["dim"], v["dim"]);

    // A browser-bundle engine given those vectors ranks like the full one.
    let browser =
        Reranker::from_bundle(&bundle.browser().expect("browser bundle"), &Device::flex())
            .expect("browser engine");
    let with_vectors: Vec<Candidate> = candidates
        .iter()
        .zip(&served)
        .map(|(c, v)| Candidate {
            item_id: c.item_id.clone(),
            content: None,
            vector: Some(v.clone()),
            available: true,
        })
        .collect();
    let session_v = [SessionEvent { vector: Some(served[0].clone()), ..session[0].clone() }];
    let order =
        |r: sessionrank_core::Ranking| r.items.into_iter().map(|i| i.item_id).collect::<Vec<_>>();
    assert_eq!(
        order(browser.rerank(&session_v, &with_vectors).expect("browser rerank")),
        order(engine.rerank(&session, &candidates).expect("native rerank")),
        "browser bundle + served vectors = full bundle"
    );

    // Bad input is still a 4xx naming the field.
    let r = call(&router, "GET", "/v1/candidates?limit=0", &[], "").await;
    assert_eq!((r.status, r.field().as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "limit"));
}

/// Every version is published with its browser bundle (same version, no item table, no
/// tokenizer), served immutable under `browser/`, the live one at `/v1/models/current/browser`;
/// a version written before browser bundles existed gets one when it is loaded.
pub async fn browser_bundles_are_published_and_served(state: AppState) {
    let router = app(state.clone());
    assert_eq!(
        call(&router, "GET", "/v1/models/current/browser", &[], "").await.status,
        StatusCode::NOT_FOUND
    );
    let bundle = tiny_bundle("20260101-000000-00000001");
    state.models.publish(bundle.clone(), true).await.expect("publish");
    let version_dir = state.models.dir().join("20260101-000000-00000001");
    assert!(
        version_dir.join("browser/manifest.json").is_file(),
        "browser/ is written with the version"
    );
    assert!(
        std::fs::read_dir(&version_dir).expect("lists").all(|e| !e
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .starts_with('.')),
        "no temporary files"
    );

    let current = call(&router, "GET", "/v1/models/current/browser", &[], "").await;
    assert_eq!(current.status, StatusCode::OK, "{:?}", current.body);
    assert_eq!(current.header("cache-control"), Some("no-cache"));
    let etag = current.header("etag").expect("etag").to_string();
    assert_eq!(etag, format!("\"{}\"", sha256_hex(&current.body)));
    let r =
        call(&router, "GET", "/v1/models/current/browser", &[("if-none-match", &etag)], "").await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert!(r.body.is_empty());
    let manifest = current.json();
    assert_eq!(manifest["kind"], "browser");
    assert_eq!(manifest["model_version"], "20260101-000000-00000001");
    let names: Vec<&str> =
        manifest["files"].as_object().expect("files").keys().map(String::as_str).collect();
    assert_eq!(names, ["categories.json", "weights.bpk"], "no items.json, no tokenizer.json");

    let base = "/v1/models/20260101-000000-00000001/browser";
    let r = call(&router, "GET", &format!("{base}/manifest.json"), &[], "").await;
    assert_eq!(
        (r.status, r.header("cache-control")),
        (StatusCode::OK, Some("public, max-age=31536000, immutable"))
    );
    assert_eq!(r.body, current.body, "the live browser manifest is the version's");
    let mut files = std::collections::BTreeMap::new();
    for (name, entry) in manifest["files"].as_object().expect("files") {
        let sha = entry["sha256"].as_str().expect("sha256");
        let r = call(&router, "GET", &format!("{base}/{name}"), &[], "").await;
        assert_eq!(r.status, StatusCode::OK, "{name}");
        assert_eq!(r.header("cache-control"), Some("public, max-age=31536000, immutable"));
        assert_eq!(r.header("etag"), Some(format!("\"{sha}\"").as_str()));
        assert_eq!(sha256_hex(&r.body), sha, "{name} matches its manifest");
        assert_eq!(entry["bytes"].as_u64(), Some(r.body.len() as u64));
        let r304 = call(
            &router,
            "GET",
            &format!("{base}/{name}"),
            &[("if-none-match", &format!("\"{sha}\""))],
            "",
        )
        .await;
        assert_eq!(r304.status, StatusCode::NOT_MODIFIED, "{name}");
        files.insert(name.clone(), r.body.to_vec());
    }
    let downloaded = ModelBundle::from_parts(&current.body, files)
        .expect("the downloaded browser bundle verifies");
    assert_eq!(downloaded.manifest.kind, BundleKind::Browser);
    Reranker::from_bundle(&downloaded, &Device::flex()).expect("an engine loads it");
    let full_weights = bundle.files.get("weights.bpk").map(Vec::len).unwrap_or(0);
    assert!(
        downloaded.files.get("weights.bpk").map(Vec::len).unwrap_or(usize::MAX) < full_weights,
        "the browser weights are smaller"
    );
    for name in [
        "items.json",
        "tokenizer.json",
        "model.safetensors",
        "secret.txt",
        "..%2Fitems.json",
        "..%2F..%2Fsessionrank.db",
    ] {
        assert_eq!(
            call(&router, "GET", &format!("{base}/{name}"), &[], "").await.status,
            StatusCode::NOT_FOUND,
            "{name}"
        );
    }
    assert_eq!(
        call(&router, "GET", "/v1/models/nope/browser/manifest.json", &[], "").await.status,
        StatusCode::NOT_FOUND
    );
    // The full bundle is still served beside it.
    assert_eq!(
        call(&router, "GET", "/v1/models/20260101-000000-00000001/items.json", &[], "")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        call(&router, "GET", "/v1/models/current", &[], "").await.json()["model_version"],
        "20260101-000000-00000001"
    );

    // A version directory from before browser bundles: loading derives the same bundle and
    // writes it.
    std::fs::remove_dir_all(version_dir.join("browser")).expect("remove browser/");
    let loaded =
        sessionrank_server::version::LoadedModel::load(&version_dir).expect("an old version loads");
    // Byte for byte: instances sharing a models directory may each derive it, and a URL that
    // names a version must always answer the same bytes (ModelBundle::browser is documented
    // as deterministic).
    assert_eq!(
        String::from_utf8_lossy(&loaded.browser.manifest_bytes),
        String::from_utf8_lossy(&current.body),
        "the browser bundle derived again is the published one, byte for byte"
    );
    assert!(version_dir.join("browser/manifest.json").is_file(), "and written");
    ModelBundle::read_dir(&version_dir.join("browser"))
        .expect("the written browser bundle verifies");
}

pub async fn models_are_published_cached_activated_and_pruned(state: AppState) {
    let router = app(state.clone());
    let r = call(&router, "GET", "/v1/models/current", &[], "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json()["error"].is_string());

    let fixture = tiny_bundle("fixture");
    let v1 = renamed(&fixture, "20260101-000000-00000001");
    state.models.publish(v1.clone(), true).await.expect("publish v1");
    let current = call(&router, "GET", "/v1/models/current", &[], "").await;
    assert_eq!(current.status, StatusCode::OK);
    assert_eq!(current.json()["model_version"], "20260101-000000-00000001");
    assert_eq!(current.header("cache-control"), Some("no-cache"));
    let etag = current.header("etag").expect("etag").to_string();
    assert_eq!(etag, format!("\"{}\"", sessionrank_core::bundle::sha256_hex(&current.body)));
    let r = call(&router, "GET", "/v1/models/current", &[("if-none-match", &etag)], "").await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    assert!(r.body.is_empty());

    for (name, entry) in &v1.manifest.files {
        let uri = format!("/v1/models/20260101-000000-00000001/{name}");
        let r = call(&router, "GET", &uri, &[], "").await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert_eq!(r.header("cache-control"), Some("public, max-age=31536000, immutable"));
        assert_eq!(r.header("etag"), Some(format!("\"{}\"", entry.sha256).as_str()));
        assert_eq!(sessionrank_core::bundle::sha256_hex(&r.body), entry.sha256);
        let r = call(
            &router,
            "GET",
            &uri,
            &[("if-none-match", &format!("W/\"x\", \"{}\"", entry.sha256))],
            "",
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{uri}");
    }
    for uri in [
        "/v1/models/20260101-000000-00000001/secret.txt",
        "/v1/models/20260101-000000-00000001/..%2F..%2Fsessionrank.db",
        "/v1/models/..%2F..%2F/manifest.json",
        "/v1/models/nope/manifest.json",
    ] {
        assert_eq!(call(&router, "GET", uri, &[], "").await.status, StatusCode::NOT_FOUND, "{uri}");
    }

    // Vectors for a page of candidates, versioned; immutable when the model knows every id.
    let items = v1.items().expect("items").items;
    let known = format!("{},{}", items[0].id, items[5].id);
    let r = call(
        &router,
        "GET",
        &format!("/v1/models/20260101-000000-00000001/vectors?ids={known}"),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.header("cache-control"), Some("public, max-age=31536000, immutable"));
    assert_eq!(r.json()["missing"], json!([]));
    // An id neither the model nor the catalog knows is missing, and the answer may change.
    let ids = format!("{},{},unknown-item,{}", items[0].id, items[5].id, items[0].id);
    let r = call(
        &router,
        "GET",
        &format!("/v1/models/20260101-000000-00000001/vectors?ids={ids}"),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.header("cache-control"), Some("public, max-age=60"));
    let v = r.json();
    assert_eq!(v["dim"], v1.manifest.config.d_model);
    assert_eq!(v["missing"], json!(["unknown-item"]));
    assert_eq!(v["from_content"], json!([]));
    let vectors = v["vectors"].as_array().expect("vectors");
    assert_eq!(vectors.len(), 2);
    assert_eq!(vectors[0]["item_id"], items[0].id.as_str());
    assert_eq!(vectors[0]["vector"].as_array().map(Vec::len), Some(v1.manifest.config.d_model));
    assert!(
        vectors[0]["vector"]
            .as_array()
            .is_some_and(|a| a.iter().all(|x| x.as_f64().is_some_and(f64::is_finite)))
    );
    let etag = r.header("etag").expect("etag").to_string();
    let r = call(
        &router,
        "GET",
        &format!("/v1/models/20260101-000000-00000001/vectors?ids={ids}"),
        &[("if-none-match", &etag)],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    for bad in ["", "?ids=", "?ids=a,,b"] {
        let r = call(
            &router,
            "GET",
            &format!("/v1/models/20260101-000000-00000001/vectors{bad}"),
            &[],
            "",
        )
        .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(r.field(), "ids");
    }
    let many: Vec<String> = (0..1001).map(|i| format!("x{i}")).collect();
    let r = call(
        &router,
        "GET",
        &format!("/v1/models/20260101-000000-00000001/vectors?ids={}", many.join(",")),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Two more versions; keep_versions = 2 removes the oldest non-live one.
    state
        .models
        .publish(renamed(&fixture, "20260102-000000-00000002"), true)
        .await
        .expect("publish v2");
    let r = admin(&router, "POST", "/admin/models/20260101-000000-00000001/activate").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        call(&router, "GET", "/v1/models/current", &[], "").await.json()["model_version"],
        "20260101-000000-00000001"
    );
    assert_eq!(
        std::fs::read_to_string(state.models.dir().join("current")).expect("pointer file").trim(),
        "20260101-000000-00000001"
    );
    state
        .models
        .publish(renamed(&fixture, "20260103-000000-00000003"), false)
        .await
        .expect("publish v3 without activating");
    assert_eq!(
        call(&router, "GET", "/v1/models/current", &[], "").await.json()["model_version"],
        "20260101-000000-00000001"
    );
    // Live v1 + newest v3 are kept; v2 is gone from disk and from the API.
    assert_eq!(
        models_dir_entries(&state),
        vec!["20260101-000000-00000001", "20260103-000000-00000003", "current"]
    );
    assert_eq!(
        call(&router, "GET", "/v1/models/20260102-000000-00000002/manifest.json", &[], "")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin(&router, "POST", "/admin/models/20260102-000000-00000002/activate").await.status,
        StatusCode::NOT_FOUND
    );
    let list = call(&router, "GET", "/v1/models", &[], "").await.json();
    assert_eq!(list["current"], "20260101-000000-00000001");
    assert_eq!(list["versions"].as_array().map(Vec::len), Some(2));
}

pub async fn failed_retraining_leaves_the_live_model(state: AppState) {
    let router = app(state.clone());
    state.models.publish(tiny_bundle("20260101-000000-00000001"), true).await.expect("publish");
    send_json(&router, "PUT", "/v1/items", &items_json(30)).await;
    let r = send_json(&router, "POST", "/v1/events", &events_json(60, 30, 0)).await;
    assert_eq!(r.status, StatusCode::OK);
    let before = models_dir_entries(&state);
    let r = admin(&router, "POST", "/admin/retrain").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let id = r.json()["id"].as_str().expect("job id").to_string();
    assert_eq!(r.header("location"), Some(format!("/admin/jobs/{id}").as_str()));
    let job = wait_for_job(&router, &id, Duration::from_secs(60)).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        job["reason"].as_str().is_some_and(|r| r.contains("injected failure after epoch 1")),
        "{job}"
    );
    assert_eq!(job["published"], false);
    assert_eq!(
        call(&router, "GET", "/v1/models/current", &[], "").await.json()["model_version"],
        "20260101-000000-00000001"
    );
    assert_eq!(models_dir_entries(&state), before, "no partial files");
    let text =
        String::from_utf8_lossy(&call(&router, "GET", "/metrics", &[], "").await.body).into_owned();
    assert!(text.contains("sessionrank_retrain_jobs_total{outcome=\"failed\"} 1"), "{text}");
    assert!(
        text.contains("sessionrank_model_info{version=\"20260101-000000-00000001\"} 1"),
        "{text}"
    );
}

// --- SQLite ---------------------------------------------------------------------------------

#[tokio::test]
async fn events_are_stored_once_per_idempotency_key_sqlite() {
    let (_dir, state) = sqlite_state(|_| {}).await;
    events_are_stored_once_per_idempotency_key(state).await;
}

#[tokio::test]
async fn bad_events_are_rejected_naming_the_field_and_store_nothing_sqlite() {
    let (_dir, state) = sqlite_state(|_| {}).await;
    bad_events_are_rejected_naming_the_field_and_store_nothing(state).await;
}

#[tokio::test]
async fn items_are_validated_and_upserted_sqlite() {
    let (_dir, state) = sqlite_state(|_| {}).await;
    items_are_validated_and_upserted(state).await;
}

#[tokio::test]
async fn candidates_are_the_most_interacted_items_first_sqlite() {
    let (_dir, state) = sqlite_state(|_| {}).await;
    candidates_are_the_most_interacted_items_first(state).await;
}

#[tokio::test]
async fn candidates_carry_the_live_models_vectors_sqlite() {
    let (_dir, state) = sqlite_state(|_| {}).await;
    candidates_carry_the_live_models_vectors(state).await;
}

#[tokio::test]
async fn browser_bundles_are_published_and_served_sqlite() {
    let (_dir, state) = sqlite_state(|_| {}).await;
    browser_bundles_are_published_and_served(state).await;
}

#[tokio::test]
async fn models_are_published_cached_activated_and_pruned_sqlite() {
    let (_dir, state) = sqlite_state(|c| c.keep_versions = 2).await;
    models_are_published_cached_activated_and_pruned(state).await;
}

#[tokio::test]
async fn failed_retraining_leaves_the_live_model_sqlite() {
    let (_dir, state) = sqlite_state(|c| c.retrain.fail_after_epoch = Some(1)).await;
    failed_retraining_leaves_the_live_model(state).await;
}

/// `POST /v1/models/{version}/vectors`: an unknown version is a 404 before the body is read;
/// bad bodies are 4xx naming the field; 1000 distinct ids at most, repeats do not count.
#[tokio::test]
async fn posted_vector_lists_are_checked_version_first_naming_the_field() {
    let (_dir, state) = sqlite_state(|_| {}).await;
    let router = app(state.clone());
    state.models.publish(tiny_bundle("20260101-000000-00000001"), true).await.expect("publish");
    let uri = "/v1/models/20260101-000000-00000001/vectors";
    let post = |uri: &'static str, body: &'static str| {
        let router = router.clone();
        async move { call(&router, "POST", uri, &[("content-type", "application/json")], body).await }
    };

    // The version first: a malformed body for a version that does not exist is its 404.
    let r = post("/v1/models/20991231-000000-0000dead/vectors", "{not json").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
    assert!(r.json()["error"].as_str().is_some_and(|e| e.contains("20991231-000000-0000dead")));

    for (body, status, field) in [
        ("{not json", StatusCode::BAD_REQUEST, "body"),
        ("{}", StatusCode::UNPROCESSABLE_ENTITY, "ids"),
        (r#"{"ids": []}"#, StatusCode::UNPROCESSABLE_ENTITY, "ids"),
        (r#"{"ids": "i1,i2"}"#, StatusCode::UNPROCESSABLE_ENTITY, "ids"),
        (r#"{"ids": ["i1", 7]}"#, StatusCode::UNPROCESSABLE_ENTITY, "ids[1]"),
        (r#"{"ids": ["i1", "i2", " "]}"#, StatusCode::UNPROCESSABLE_ENTITY, "ids[2]"),
        (r#"{"ids": ["i1"], "limit": 3}"#, StatusCode::UNPROCESSABLE_ENTITY, "limit"),
    ] {
        let r = post(uri, body).await;
        assert_eq!((r.status, r.field().as_str()), (status, field), "{body}: {:?}", r.body);
    }
    let r =
        call(&router, "POST", uri, &[("content-type", "text/plain")], r#"{"ids":["i1"]}"#).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // 1001 distinct ids are refused; 5000 entries of 3 distinct ids are one small answer.
    let many: Vec<String> = (0..1001).map(|i| format!("x{i}")).collect();
    let r = send_json(&router, "POST", uri, &json!({ "ids": many })).await;
    assert_eq!((r.status, r.field().as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "ids"));
    let repeated: Vec<&str> = ["i2", "i1", "unknown-item"].into_iter().cycle().take(5000).collect();
    let r = send_json(&router, "POST", uri, &json!({ "ids": repeated })).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let v = r.json();
    let got: Vec<&str> = v["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .map(|e| e["item_id"].as_str().expect("item_id"))
        .collect();
    assert_eq!(got, ["i2", "i1"]);
    assert_eq!(v["missing"], json!(["unknown-item"]));
}

#[tokio::test]
async fn oversize_bodies_are_413_with_a_json_error() {
    let (_dir, state) = sqlite_state(|c| c.body_limit = 2048).await;
    let app = app(state);
    send_json(&app, "PUT", "/v1/items", &items_json(10)).await;
    let big = events_json(40, 10, 0);
    assert!(big.to_string().len() > 2048);
    let r = send_json(&app, "POST", "/v1/events", &big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.field(), "body");
    assert_eq!(stats(&app).await["events"], 0);
    // Under the limit it goes through.
    assert_eq!(
        send_json(&app, "POST", "/v1/events", &events_json(2, 10, 0)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn too_many_events_per_request_are_refused() {
    let (_dir, state) = sqlite_state(|c| c.max_events_per_request = 10).await;
    let app = app(state);
    send_json(&app, "PUT", "/v1/items", &items_json(10)).await;
    let r = send_json(&app, "POST", "/v1/events", &events_json(3, 10, 0)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.field(), "events");
}

const ADMIN_ROUTES: [(&str, &str); 4] = [
    ("POST", "/admin/retrain"),
    ("GET", "/admin/jobs/job-1"),
    ("POST", "/admin/models/20260101-000000-00000001/activate"),
    ("GET", "/admin/stats"),
];

#[tokio::test]
async fn admin_routes_need_the_bearer_token() {
    let (_dir, state) = sqlite_state(|_| {}).await;
    let app = app(state);
    let wrong = format!("Bearer {TOKEN}x");
    let short = "Bearer t".to_string();
    let basic = format!("Basic {TOKEN}");
    for (method, uri) in ADMIN_ROUTES {
        for headers in [
            vec![],
            vec![("authorization", wrong.as_str())],
            vec![("authorization", short.as_str())],
            vec![("authorization", basic.as_str())],
            vec![("authorization", "Bearer")],
        ] {
            let r = call(&app, method, uri, &headers, "").await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {uri} {headers:?}");
            assert_eq!(r.header("www-authenticate"), Some("Bearer"));
            assert!(r.json()["error"].is_string());
        }
    }
    // With the token the routes answer (404 for the unknown job and version).
    assert_eq!(admin(&app, "GET", "/admin/jobs/job-1").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        admin(&app, "POST", "/admin/models/20260101-000000-00000001/activate").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(admin(&app, "GET", "/admin/stats").await.status, StatusCode::OK);
}

#[tokio::test]
async fn admin_api_is_disabled_without_a_token() {
    let (_dir, state) = sqlite_state(|c| c.admin_token = None).await;
    let app = app(state);
    for (method, uri) in ADMIN_ROUTES {
        for headers in [vec![], vec![("authorization", "Bearer anything")]] {
            let r = call(&app, method, uri, &headers, "").await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {uri}");
            assert!(
                r.json()["error"].as_str().is_some_and(|e| e.contains("SESSIONRANK_ADMIN_TOKEN"))
            );
        }
    }
}

#[tokio::test]
async fn health_metrics_openapi_and_unknown_routes() {
    let (_dir, state) = sqlite_state(|_| {}).await;
    let app = app(state);
    let r = call(&app, "GET", "/healthz", &[], "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "ok");
    let r = call(&app, "GET", "/metrics", &[], "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("text/plain")));
    let r = call(&app, "GET", "/openapi.json", &[], "").await;
    assert_eq!(r.status, StatusCode::OK);
    let spec = r.json();
    assert_eq!(spec["openapi"], "3.0.3");
    for path in [
        "/v1/events",
        "/v1/items",
        "/v1/candidates",
        "/v1/models",
        "/v1/models/current",
        "/v1/models/current/browser",
        "/v1/models/{version}/{file}",
        "/v1/models/{version}/browser/{file}",
        "/v1/models/{version}/vectors",
        "/admin/retrain",
        "/admin/jobs/{id}",
        "/admin/models/{version}/activate",
        "/admin/stats",
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/items/{id}",
        "/v1/sessions/{id}",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} is documented");
    }
    let r = call(&app, "GET", "/nope", &[], "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json()["error"].is_string());
}

#[tokio::test]
async fn demo_page_is_served_from_the_web_dir() {
    let web = tempfile::tempdir().expect("tempdir");
    std::fs::write(web.path().join("index.html"), "<h1>demo</h1>").expect("write");
    let web_dir = web.path().to_path_buf();
    let (_dir, state) = sqlite_state(move |c| c.web_dir = Some(web_dir)).await;
    let app = app(state);
    let r = call(&app, "GET", "/", &[], "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], b"<h1>demo</h1>");
    assert_eq!(call(&app, "GET", "/missing.js", &[], "").await.status, StatusCode::NOT_FOUND);
    assert_eq!(call(&app, "GET", "/healthz", &[], "").await.status, StatusCode::OK);
}
