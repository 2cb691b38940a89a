//! The browser package in a real browser (headless Chromium via `scripts/test-browser`):
//! parity with the native engine on the committed bundle, the end-to-end load → observe →
//! rerank path, and every bad input a storefront or a network can produce.

#![cfg(target_family = "wasm")]

use std::collections::HashMap;

use js_sys::{Map, Reflect, Uint8Array};
use serde::Deserialize;
use serde_json::{Value, json};
use sessionrank_core::bundle::sha256_hex;
use sessionrank_core::{Candidate, SessionEvent};
use sessionrank_wasm::Reranker;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const MANIFEST: &[u8] = include_bytes!("../../../tests/fixtures/bundle-slice/manifest.json");
const WEIGHTS: &[u8] = include_bytes!("../../../tests/fixtures/bundle-slice/weights.bpk");
const TOKENIZER: &[u8] = include_bytes!("../../../tests/fixtures/bundle-slice/tokenizer.json");
const ITEMS: &[u8] = include_bytes!("../../../tests/fixtures/bundle-slice/items.json");
const PARITY: &str = include_str!("../../../tests/fixtures/parity.json");

/// Where scripts/test-browser copies the fixture bundle (the test server serves the crate dir).
const SERVED_MANIFEST: &str = "/tests/served/bundle-slice/manifest.json";

#[derive(Deserialize)]
struct Golden {
    tolerance: f32,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    session: Vec<SessionEvent>,
    candidates: Vec<Candidate>,
    expected: Expected,
}

#[derive(Deserialize)]
struct Expected {
    personalised: bool,
    scores: Vec<f32>,
    top10: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RankingOut {
    items: Vec<RankedOut>,
    personalised: bool,
    reason: Option<String>,
    backend: String,
    millis: f64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RankedOut {
    item_id: String,
    score: f32,
    upstream_rank: usize,
    because: Vec<BecauseOut>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BecauseOut {
    item_id: String,
    weight: f32,
}

fn js(v: &Value) -> JsValue {
    serde::Serialize::serialize(v, &serde_wasm_bindgen::Serializer::json_compatible()).expect("json → js")
}

fn memory() -> JsValue {
    js(&json!({ "storage": "memory" }))
}

fn files(weights: &[u8], tokenizer: &[u8], items: &[u8]) -> JsValue {
    let m = Map::new();
    m.set(&"weights.bpk".into(), &Uint8Array::from(weights));
    m.set(&"tokenizer.json".into(), &Uint8Array::from(tokenizer));
    m.set(&"items.json".into(), &Uint8Array::from(items));
    m.into()
}

fn engine() -> Reranker {
    Reranker::from_bytes(MANIFEST, files(WEIGHTS, TOKENIZER, ITEMS), memory()).expect("fixture bundle loads")
}

/// The JS shape of an engine event (timestamps: seconds → Date.now() milliseconds).
fn event_js(e: &SessionEvent) -> JsValue {
    let mut v = json!({ "itemId": e.item_id, "kind": format!("{:?}", e.kind).to_lowercase().replace("addtocart", "add_to_cart") });
    v["timestamp"] = match e.timestamp {
        Some(t) => json!(t as f64 * 1000.0),
        None => Value::Null,
    };
    if let Some(c) = &e.content {
        v["content"] = json!({ "text": c.text, "category": c.category, "priceLevel": c.price_level });
    }
    js(&v)
}

fn candidates_js(cs: &[Candidate]) -> JsValue {
    js(&Value::Array(
        cs.iter()
            .map(|c| match &c.content {
                None => json!(c.item_id),
                Some(ct) => json!({ "itemId": c.item_id, "content": { "text": ct.text, "category": ct.category, "priceLevel": ct.price_level } }),
            })
            .collect(),
    ))
}

fn ranking(v: JsValue) -> RankingOut {
    serde_wasm_bindgen::from_value(v).expect("ranking shape")
}

/// The error's `code`, after checking it is a real `Error` named SessionrankError.
fn code(e: &JsValue) -> String {
    let err = e.dyn_ref::<js_sys::Error>().expect("a JS Error object");
    assert_eq!(String::from(err.name()), "SessionrankError");
    Reflect::get(e, &"code".into()).ok().and_then(|c| c.as_string()).expect("a code")
}

fn prop(e: &JsValue, key: &str) -> JsValue {
    Reflect::get(e, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

fn manifest_json() -> Value {
    serde_json::from_slice(MANIFEST).expect("manifest")
}

fn load_err(manifest: &[u8], weights: &[u8], tokenizer: &[u8], items: &[u8]) -> JsValue {
    match Reranker::from_bytes(manifest, files(weights, tokenizer, items), memory()) {
        Ok(_) => panic!("a bad bundle was accepted"),
        Err(e) => e,
    }
}

async fn play(r: &Reranker, case: &Case) -> RankingOut {
    r.reset();
    for e in &case.session {
        r.observe(event_js(e)).expect("observe");
    }
    ranking(r.rerank(candidates_js(&case.candidates)).await.expect("rerank"))
}

fn check_parity(case: &Case, got: &RankingOut, tolerance: f32) -> f32 {
    assert_eq!(got.personalised, case.expected.personalised, "{}", case.name);
    assert_eq!(got.items.len(), case.candidates.len(), "{}", case.name);
    let by_id: HashMap<&str, f32> = got.items.iter().map(|i| (i.item_id.as_str(), i.score)).collect();
    let mut worst = 0.0f32;
    for (c, want) in case.candidates.iter().zip(&case.expected.scores) {
        let score = by_id.get(c.item_id.as_str()).copied().expect("every candidate comes back");
        worst = worst.max((score - want).abs());
    }
    let top10: Vec<&str> = got.items.iter().take(10).map(|i| i.item_id.as_str()).collect();
    assert_eq!(top10, case.expected.top10.iter().map(String::as_str).collect::<Vec<_>>(), "{}: top-10 order", case.name);
    assert!(worst <= tolerance, "{}: max |diff| {worst} > {tolerance}", case.name);
    worst
}

#[wasm_bindgen_test]
async fn browser_scores_equal_the_native_golden_scores() {
    let golden: Golden = serde_json::from_str(PARITY).expect("parity.json");
    let r = engine();
    let mut worst = 0.0f32;
    for case in &golden.cases {
        let got = play(&r, case).await;
        worst = worst.max(check_parity(case, &got, golden.tolerance));
        assert_eq!(got.backend, "cpu");
        assert!(got.millis >= 0.0);
    }
    console_log!("parity: {} cases, max |diff| = {worst:e}", golden.cases.len());
}

#[wasm_bindgen_test]
async fn load_observe_rerank_end_to_end() {
    let golden: Golden = serde_json::from_str(PARITY).expect("parity.json");
    let r = Reranker::load(SERVED_MANIFEST.into(), memory())
        .await
        .unwrap_or_else(|e| panic!("load {SERVED_MANIFEST} (scripts/test-browser copies it there): {e:?}"));
    let case = golden.cases.iter().find(|c| c.name == "five_events_mixed_kinds").expect("case");
    let got = play(&r, case).await;
    check_parity(case, &got, golden.tolerance);
    assert!(got.items.iter().any(|i| !i.because.is_empty()), "explanations are produced");
    let session_ids: Vec<&str> = case.session.iter().map(|e| e.item_id.as_str()).collect();
    for i in &got.items {
        assert!(i.upstream_rank < case.candidates.len());
        assert_eq!(case.candidates[i.upstream_rank].item_id, i.item_id);
        for b in &i.because {
            assert!(session_ids.contains(&b.item_id.as_str()) && b.weight > 0.0);
        }
    }
}

#[wasm_bindgen_test]
async fn http_404_and_network_failures_are_typed_errors() {
    let e = Reranker::load("/tests/served/no-such-bundle/manifest.json".into(), memory()).await.err().expect("404 rejects");
    assert_eq!(code(&e), "http_status");
    assert_eq!(prop(&e, "status").as_f64(), Some(404.0));
    let e = Reranker::load("http://127.0.0.1:9/manifest.json".into(), memory()).await.err().expect("refused connection rejects");
    assert_eq!(code(&e), "network");
    let e = Reranker::load("http://[bad".into(), memory()).await.err().expect("bad URL rejects");
    assert_eq!(code(&e), "invalid_input");
}

#[wasm_bindgen_test]
fn truncated_or_tampered_weights_are_rejected() {
    let truncated = &WEIGHTS[..WEIGHTS.len() / 2];
    let e = load_err(MANIFEST, truncated, TOKENIZER, ITEMS);
    assert_eq!(code(&e), "checksum_mismatch");
    assert_eq!(prop(&e, "file").as_string().as_deref(), Some("weights.bpk"));

    let mut tampered = WEIGHTS.to_vec();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0x40;
    assert_eq!(code(&load_err(MANIFEST, &tampered, TOKENIZER, ITEMS)), "checksum_mismatch");

    // A truncated file whose manifest was re-hashed to match still fails as a decode error.
    let mut m = manifest_json();
    m["files"]["weights.bpk"] = json!({ "sha256": sha256_hex(truncated), "bytes": truncated.len() });
    let m = serde_json::to_vec(&m).expect("json");
    assert_eq!(code(&load_err(&m, truncated, TOKENIZER, ITEMS)), "weights");
}

#[wasm_bindgen_test]
fn wrong_checksum_other_format_and_missing_files_are_rejected() {
    let mut m = manifest_json();
    m["files"]["tokenizer.json"]["sha256"] = json!("00".repeat(32));
    let e = load_err(&serde_json::to_vec(&m).expect("json"), WEIGHTS, TOKENIZER, ITEMS);
    assert_eq!(code(&e), "checksum_mismatch");
    assert_eq!(prop(&e, "file").as_string().as_deref(), Some("tokenizer.json"));

    let mut m = manifest_json();
    m["format_version"] = json!(2);
    let e = load_err(&serde_json::to_vec(&m).expect("json"), WEIGHTS, TOKENIZER, ITEMS);
    assert_eq!(code(&e), "unsupported_format");
    assert_eq!(prop(&e, "found").as_f64(), Some(2.0));

    assert_eq!(code(&load_err(b"{not json", WEIGHTS, TOKENIZER, ITEMS)), "invalid_file");

    let only_weights = Map::new();
    only_weights.set(&"weights.bpk".into(), &Uint8Array::from(WEIGHTS));
    let e = Reranker::from_bytes(MANIFEST, only_weights.into(), memory()).err().expect("missing files reject");
    assert_eq!(code(&e), "missing_file");

    // A plain object works like a Map.
    let obj = js_sys::Object::new();
    Reflect::set(&obj, &"weights.bpk".into(), &Uint8Array::from(WEIGHTS).buffer()).expect("set");
    Reflect::set(&obj, &"tokenizer.json".into(), &Uint8Array::from(TOKENIZER)).expect("set");
    Reflect::set(&obj, &"items.json".into(), &Uint8Array::from(ITEMS)).expect("set");
    assert!(Reranker::from_bytes(MANIFEST, obj.into(), memory()).is_ok());
}

/// An `invalid_input` rejection's field.
async fn rerank_field(r: &Reranker, candidates: Value) -> String {
    let e = r.rerank(js(&candidates)).await.err().expect("rejected");
    assert_eq!(code(&e), "invalid_input");
    prop(&e, "field").as_string().expect("field")
}

#[wasm_bindgen_test]
async fn bad_candidate_lists_are_typed_errors() {
    let r = engine();
    r.observe(js(&json!({ "itemId": "6" }))).expect("observe");
    assert_eq!(rerank_field(&r, json!([])).await, "candidates");
    let too_many: Vec<String> = (0..1001).map(|i| format!("x{i}")).collect();
    assert_eq!(rerank_field(&r, json!(too_many)).await, "candidates");
    assert_eq!(rerank_field(&r, json!(["9", "12", "9"])).await, "candidates[2].item_id");
    assert_eq!(rerank_field(&r, json!(["9", ""])).await, "candidates[1].itemId");
    assert_eq!(rerank_field(&r, json!({ "itemId": "9" })).await, "candidates");
    assert_eq!(rerank_field(&r, json!(["9", null])).await, "candidates[1]");
    assert_eq!(rerank_field(&r, json!(["9", 1.5])).await, "candidates[1].itemId");

    // NaN and negative prices (NaN cannot be written in JSON: set it from JS).
    let list = js(&json!(["9", { "itemId": "new", "content": { "text": "w2408", "price": 0 } }]));
    let content = Reflect::get(&js_sys::Array::from(&list).get(1), &"content".into()).expect("content");
    Reflect::set(&content, &"price".into(), &JsValue::from_f64(f64::NAN)).expect("set");
    let e = r.rerank(list).await.err().expect("NaN price rejects");
    assert_eq!(code(&e), "invalid_input");
    assert_eq!(prop(&e, "field").as_string().as_deref(), Some("candidates[1].content.price"));
    assert_eq!(rerank_field(&r, json!(["9", { "itemId": "new", "content": { "price": -3 } }])).await, "candidates[1].content.price");

    // The session survived all of that.
    assert_eq!(r.session_length(), 1);
}

#[wasm_bindgen_test]
fn bad_events_are_typed_errors_and_leave_the_session_alone() {
    let r = engine();
    let field = |v: JsValue| {
        let e = r.observe(v).err().expect("rejected");
        assert_eq!(code(&e), "invalid_input");
        prop(&e, "field").as_string().expect("field")
    };
    assert_eq!(field(js(&json!({ "itemId": "6", "kind": "teleport" }))), "event.kind");
    assert_eq!(field(js(&json!({ "itemId": " " }))), "event.itemId");
    assert_eq!(field(js(&json!({ "kind": "view" }))), "event");
    assert_eq!(field(JsValue::from_str("6")), "event");
    let ev = js(&json!({ "itemId": "6", "timestamp": 0 }));
    Reflect::set(&ev, &"timestamp".into(), &JsValue::from_f64(f64::NAN)).expect("set");
    assert_eq!(field(ev), "event.timestamp");
    let ev = js(&json!({ "itemId": "new", "content": { "price": 0 } }));
    let content = Reflect::get(&ev, &"content".into()).expect("content");
    Reflect::set(&content, &"price".into(), &JsValue::from_f64(f64::NAN)).expect("set");
    assert_eq!(field(ev), "event.content.price");
    assert_eq!(r.session_length(), 0);
}

#[wasm_bindgen_test]
async fn unknown_ids_and_empty_sessions_have_documented_fallbacks() {
    let r = engine();
    let got = ranking(r.rerank(js(&json!(["9", "12", 19]))).await.expect("empty session"));
    assert!(!got.personalised);
    assert!(got.reason.is_some());
    assert_eq!(got.items.iter().map(|i| i.item_id.as_str()).collect::<Vec<_>>(), ["9", "12", "19"]);

    // Unknown ids in the session and the list: content when given, else the generic vector.
    r.observe(js(&json!({ "itemId": "never-seen", "kind": "click" }))).expect("unknown id without content");
    r.observe(js(&json!({ "itemId": 6, "kind": "add_to_cart", "timestamp": 1_700_000_000_000.0_f64 }))).expect("numeric id");
    let got = ranking(
        r.rerank(js(&json!(["9", "also-unknown", { "itemId": "new", "content": { "text": "w2408 w26881", "category": 1053, "price": 129.9 } }])))
            .await
            .expect("unknown candidates are scored"),
    );
    assert!(got.personalised);
    assert_eq!(got.items.len(), 3);
    assert!(got.items.iter().all(|i| i.score.is_finite()));
}

#[wasm_bindgen_test]
async fn the_session_persists_in_session_storage_per_model_version() {
    let storage = web_sys::window().and_then(|w| w.session_storage().ok().flatten()).expect("sessionStorage");
    let a = Reranker::from_bytes(MANIFEST, files(WEIGHTS, TOKENIZER, ITEMS), JsValue::UNDEFINED).expect("load");
    a.reset();
    assert_eq!(a.storage(), "sessionStorage");
    a.observe(js(&json!({ "itemId": "6" }))).expect("observe");
    a.observe(js(&json!({ "itemId": "9", "kind": "purchase", "timestamp": 1_700_000_000_000.0_f64 }))).expect("observe");
    let key = a.storage_key();
    assert!(key.contains(&a.model_version()));
    assert!(storage.get_item(&key).ok().flatten().is_some());

    // A "reload": a new instance of the same model version sees the session.
    let b = Reranker::from_bytes(MANIFEST, files(WEIGHTS, TOKENIZER, ITEMS), JsValue::UNDEFINED).expect("load");
    assert_eq!(b.session_length(), 2);
    let events: Vec<Value> = serde_wasm_bindgen::from_value(b.session().expect("session")).expect("events");
    assert_eq!(events[1]["kind"], "purchase");
    assert_eq!(events[1]["timestamp"].as_f64(), Some(1_700_000_000_000.0));
    assert!(ranking(b.rerank(js(&json!(["12", "19"]))).await.expect("rerank")).personalised);

    // Corrupt storage is ignored, not fatal.
    storage.set_item(&key, "{garbage").expect("set");
    let c = Reranker::from_bytes(MANIFEST, files(WEIGHTS, TOKENIZER, ITEMS), JsValue::UNDEFINED).expect("load");
    assert_eq!(c.session_length(), 0);

    b.reset();
    assert!(storage.get_item(&key).ok().flatten().is_none());
    // Memory-only instances never touch storage.
    let m = engine();
    m.observe(js(&json!({ "itemId": "6" }))).expect("observe");
    assert_eq!(m.storage(), "memory");
    assert!(storage.get_item(&key).ok().flatten().is_none());
}

/// Not an assertion: where `load` spends its time on the fixture bundle (printed; used for
/// the cold-start note in results/browser.json). Each step is the core call `from_bytes` makes.
#[wasm_bindgen_test]
fn cold_start_profile() {
    use burn::tensor::Device;
    use sessionrank_core::{FeatureEncoder, ItemTokenizer, ModelBundle};
    let perf = web_sys::window().and_then(|w| w.performance()).expect("performance");
    let mut t = perf.now();
    let mut lap = |what: &str| {
        let now = perf.now();
        console_log!("cold start: {what}: {:.1} ms", now - t);
        t = now;
    };
    let map: std::collections::BTreeMap<String, Vec<u8>> =
        [("weights.bpk", WEIGHTS), ("tokenizer.json", TOKENIZER), ("items.json", ITEMS)].into_iter().map(|(k, v)| (k.to_string(), v.to_vec())).collect();
    lap("copy bytes");
    let bundle = ModelBundle::from_parts(MANIFEST, map).expect("bundle");
    lap("sha256 of every file + manifest");
    let items = bundle.items().expect("items");
    lap("parse items.json");
    let tokenizer = ItemTokenizer::from_json(TOKENIZER).expect("tokenizer");
    lap("parse tokenizer.json");
    let c = &bundle.manifest.config;
    let encoder = FeatureEncoder::from_catalog(&items.catalog(), tokenizer, bundle.manifest.features.max_tokens, c.max_len, c.max_candidates).expect("encoder");
    lap("catalog + tokenize every item's text");
    let model = c.init(&Device::flex());
    lap("init model (random weights)");
    let _model = sessionrank_core::reranker::load_weights(model, WEIGHTS).expect("weights");
    lap("decode weights.bpk into the model");
    assert_eq!(encoder.n_items(), c.n_items);
}

#[wasm_bindgen_test]
fn timestamps_default_to_now_and_null_means_unknown() {
    let r = engine();
    let before = js_sys::Date::now();
    r.observe(js(&json!({ "itemId": "6" }))).expect("no timestamp");
    r.observe(js(&json!({ "itemId": "9", "timestamp": null }))).expect("null timestamp");
    let events: Vec<Value> = serde_wasm_bindgen::from_value(r.session().expect("session")).expect("events");
    let t = events[0]["timestamp"].as_f64().expect("stamped with the call time");
    assert!(t >= (before / 1000.0).floor() * 1000.0 && t <= js_sys::Date::now());
    assert!(events[1]["timestamp"].is_null());
    assert_eq!(events[0]["kind"], "view");
}
