//! The browser package in a real browser (headless Chromium via `scripts/test-browser`):
//! parity with the native engine on the committed bundle (its browser bundle, fed the item
//! vectors the full model computes, must score like the full bundle natively), the end-to-end
//! load → observe → rerank path, and every bad input a storefront or a network can produce.

#![cfg(target_family = "wasm")]

use js_sys::{Map, Reflect, Uint8Array};
use serde::Deserialize;
use serde_json::{Value, json};
use sessionrank_core::bundle::sha256_hex;
use sessionrank_core::{Candidate, SessionEvent};
use sessionrank_wasm::Reranker;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

mod golden;
use golden::{GoldenCase, Tolerance};

wasm_bindgen_test_configure!(run_in_browser);

const MANIFEST: &[u8] =
    include_bytes!("../../../tests/fixtures/bundle-slice-browser/manifest.json");
const WEIGHTS: &[u8] = include_bytes!("../../../tests/fixtures/bundle-slice-browser/weights.bpk");
const CATEGORIES: &[u8] =
    include_bytes!("../../../tests/fixtures/bundle-slice-browser/categories.json");
/// The full bundle's manifest: this package must refuse it (it has no tokenizer).
const FULL_MANIFEST: &[u8] = include_bytes!("../../../tests/fixtures/bundle-slice/manifest.json");
const PARITY: &str = include_str!("../../../tests/fixtures/parity.json");
/// Orders the native engine gives a page of `PARITY` under rule combinations.
const PARITY_RULES: &str = include_str!("../../../tests/fixtures/parity-rules.json");
// The distilled Diginetica student as it ships (docs/distill.md), with its native golden scores.
const STUDENT_MANIFEST: &[u8] =
    include_bytes!("../../../tests/fixtures/student-diginetica-browser/manifest.json");
const STUDENT_WEIGHTS: &[u8] =
    include_bytes!("../../../tests/fixtures/student-diginetica-browser/weights.bpk");
const STUDENT_CATEGORIES: &[u8] =
    include_bytes!("../../../tests/fixtures/student-diginetica-browser/categories.json");
const STUDENT_PARITY: &str = include_str!("../../../tests/fixtures/parity-student.json");

/// Where scripts/test-browser copies the fixture bundles (the test server serves the crate dir).
const SERVED_MANIFEST: &str = "/tests/served/bundle-slice-browser/manifest.json";
const SERVED_FULL_MANIFEST: &str = "/tests/served/bundle-slice/manifest.json";

#[derive(Deserialize)]
struct Golden {
    tolerance: f32,
    relative_tolerance: f32,
    cases: Vec<Case>,
}

impl Golden {
    fn tolerance(&self) -> Tolerance {
        Tolerance { absolute: self.tolerance, relative: self.relative_tolerance }
    }
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
    hidden: Vec<HiddenOut>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HiddenOut {
    item_id: String,
    reason: String,
}

#[derive(Deserialize)]
struct RulesGolden {
    page: String,
    categories: std::collections::BTreeMap<String, String>,
    unavailable: Vec<String>,
    cases: Vec<RulesCase>,
}

#[derive(Deserialize)]
struct RulesCase {
    name: String,
    with_session: bool,
    /// The rules as JSON (camelCase): passed to `rerank` as a plain JS object.
    rules: Value,
    order: Vec<String>,
    hidden: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RankedOut {
    item_id: String,
    score: f32,
    upstream_rank: usize,
    because: Vec<BecauseOut>,
    effects: Value,
    explanation: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BecauseOut {
    item_id: String,
    weight: f32,
}

fn js(v: &Value) -> JsValue {
    serde::Serialize::serialize(v, &serde_wasm_bindgen::Serializer::json_compatible())
        .expect("json → js")
}

fn memory() -> JsValue {
    js(&json!({ "storage": "memory" }))
}

fn files(weights: &[u8], categories: &[u8]) -> JsValue {
    let m = Map::new();
    m.set(&"weights.bpk".into(), &Uint8Array::from(weights));
    m.set(&"categories.json".into(), &Uint8Array::from(categories));
    m.into()
}

fn engine() -> Reranker {
    Reranker::from_bytes(MANIFEST, files(WEIGHTS, CATEGORIES), memory())
        .expect("fixture bundle loads")
}

/// The JS shape of an engine event (timestamps: seconds → Date.now() milliseconds).
fn event_js(e: &SessionEvent) -> JsValue {
    let mut v = json!({ "itemId": e.item_id, "kind": format!("{:?}", e.kind).to_lowercase().replace("addtocart", "add_to_cart") });
    v["timestamp"] = match e.timestamp {
        Some(t) => json!(t as f64 * 1000.0),
        None => Value::Null,
    };
    if let Some(c) = &e.content {
        v["content"] =
            json!({ "text": c.text, "category": c.category, "priceLevel": c.price_level });
    }
    if let Some(vector) = &e.vector {
        v["vector"] = json!(vector);
    }
    js(&v)
}

/// Candidates as a page passes them: vectors as plain arrays, except every third one as a
/// `Float32Array` (both shapes are accepted).
fn candidates_js(cs: &[Candidate]) -> JsValue {
    let list = js(&Value::Array(
        cs.iter()
            .map(|c| {
                let mut v = json!({ "itemId": c.item_id });
                if let Some(ct) = &c.content {
                    v["content"] = json!({ "text": ct.text, "category": ct.category, "priceLevel": ct.price_level });
                }
                if let Some(vector) = &c.vector {
                    v["vector"] = json!(vector);
                }
                if !c.available {
                    v["available"] = json!(false);
                }
                if c.content.is_none() && c.vector.is_none() && c.available {
                    json!(c.item_id)
                } else {
                    v
                }
            })
            .collect(),
    ));
    let array = js_sys::Array::from(&list);
    for (i, c) in cs.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
        if let Some(vector) = &c.vector {
            Reflect::set(
                &array.get(i as u32),
                &"vector".into(),
                &js_sys::Float32Array::from(vector.as_slice()),
            )
            .expect("set");
        }
    }
    list
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

fn load_err(manifest: &[u8], weights: &[u8], categories: &[u8]) -> JsValue {
    match Reranker::from_bytes(manifest, files(weights, categories), memory()) {
        Ok(_) => panic!("a bad bundle was accepted"),
        Err(e) => e,
    }
}

async fn play(r: &Reranker, case: &Case) -> RankingOut {
    r.reset();
    for e in &case.session {
        r.observe(event_js(e)).expect("observe");
    }
    ranking(r.rerank(candidates_js(&case.candidates), JsValue::UNDEFINED).await.expect("rerank"))
}

fn check_parity(case: &Case, got: &RankingOut, tolerance: Tolerance) -> f32 {
    assert_eq!(got.personalised, case.expected.personalised, "{}", case.name);
    let want = GoldenCase {
        name: &case.name,
        candidates: case.candidates.iter().map(|c| c.item_id.as_str()).collect(),
        scores: &case.expected.scores,
        top10: &case.expected.top10,
    };
    let ranked: Vec<(&str, f32)> =
        got.items.iter().map(|i| (i.item_id.as_str(), i.score)).collect();
    golden::assert_matches(&want, &ranked, tolerance)
}

#[wasm_bindgen_test]
async fn browser_scores_equal_the_native_golden_scores() {
    let golden: Golden = serde_json::from_str(PARITY).expect("parity.json");
    let r = engine();
    let mut worst = 0.0f32;
    for case in &golden.cases {
        let got = play(&r, case).await;
        worst = worst.max(check_parity(case, &got, golden.tolerance()));
        assert_eq!(got.backend, "cpu");
        assert!(got.millis >= 0.0);
    }
    console_log!("parity: {} cases, max |diff| = {worst:e}", golden.cases.len());
}

#[wasm_bindgen_test]
async fn the_distilled_student_loads_and_scores_like_the_native_engine() {
    let golden: Golden = serde_json::from_str(STUDENT_PARITY).expect("parity-student.json");
    let r = Reranker::from_bytes(
        STUDENT_MANIFEST,
        files(STUDENT_WEIGHTS, STUDENT_CATEGORIES),
        memory(),
    )
    .expect("the student's browser bundle loads");
    let mut worst = 0.0f32;
    for case in &golden.cases {
        let got = play(&r, case).await;
        worst = worst.max(check_parity(case, &got, golden.tolerance()));
    }
    console_log!(
        "student parity: {} cases, {} weight bytes, max |diff| = {worst:e}",
        golden.cases.len(),
        STUDENT_WEIGHTS.len()
    );
}

#[wasm_bindgen_test]
async fn load_observe_rerank_end_to_end() {
    let golden: Golden = serde_json::from_str(PARITY).expect("parity.json");
    let r = Reranker::load(SERVED_MANIFEST.into(), memory()).await.unwrap_or_else(|e| {
        panic!("load {SERVED_MANIFEST} (scripts/test-browser copies it there): {e:?}")
    });
    let case = golden.cases.iter().find(|c| c.name == "five_events_mixed_kinds").expect("case");
    let got = play(&r, case).await;
    check_parity(case, &got, golden.tolerance());
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
    let e = Reranker::load("/tests/served/no-such-bundle/manifest.json".into(), memory())
        .await
        .err()
        .expect("404 rejects");
    assert_eq!(code(&e), "http_status");
    assert_eq!(prop(&e, "status").as_f64(), Some(404.0));
    let e = Reranker::load("http://127.0.0.1:9/manifest.json".into(), memory())
        .await
        .err()
        .expect("refused connection rejects");
    assert_eq!(code(&e), "network");
    let e = Reranker::load("http://[bad".into(), memory()).await.err().expect("bad URL rejects");
    assert_eq!(code(&e), "invalid_input");
}

/// Over HTTP the checksums come from the browser's `crypto.subtle` (the test page is on
/// localhost, a secure context): a tampered file is still refused, naming it, and a good
/// load says where its time went.
#[wasm_bindgen_test]
async fn a_tampered_file_fetched_over_http_is_refused() {
    let e = Reranker::load("/tests/served/tampered-browser/manifest.json".into(), memory())
        .await
        .err()
        .expect("tampered weights reject");
    assert_eq!(code(&e), "checksum_mismatch");
    assert_eq!(prop(&e, "file").as_string().as_deref(), Some("weights.bpk"));
    let r = Reranker::load(SERVED_MANIFEST.into(), memory()).await.expect("the good copy loads");
    let t = r.load_timings().expect("loadTimings");
    for key in ["fetchMs", "verifyMs", "buildMs", "chooseMs"] {
        let ms = prop(&t, key).as_f64().unwrap_or(-1.0);
        assert!(ms >= 0.0, "{key}: {ms}");
    }
}

/// `prefetchBundle`'s shape (web/sessionrank-prefetch.js), built here: the manifest's
/// response and the responses of `started` files, for the manifest at `url` (absolute).
fn prefetched(url: &str, manifest_url: &str, started: &[&str]) -> JsValue {
    let window = web_sys::window().expect("a page");
    let files = js_sys::Object::new();
    for name in started {
        let file_url = web_sys::Url::new_with_base(name, manifest_url).expect("url").href();
        Reflect::set(&files, &(*name).into(), &window.fetch_with_str(&file_url)).expect("set");
    }
    let p = js_sys::Object::new();
    Reflect::set(&p, &"url".into(), &url.into()).expect("set");
    Reflect::set(&p, &"manifest".into(), &window.fetch_with_str(manifest_url)).expect("set");
    Reflect::set(&p, &"files".into(), &js_sys::Promise::resolve(&files)).expect("set");
    let options = memory();
    Reflect::set(&options, &"prefetched".into(), &p).expect("set");
    options
}

/// A bundle whose downloads the page started before the module was ready loads and scores
/// exactly like one `load` fetched itself (a file the prefetch did not start is fetched then);
/// a prefetch of another URL, or of another shape, is refused; a tampered file is still caught.
#[wasm_bindgen_test]
async fn a_prefetched_bundle_loads_like_a_fetched_one() {
    let golden: Golden = serde_json::from_str(PARITY).expect("parity.json");
    let case = golden.cases.iter().find(|c| c.name == "five_events_mixed_kinds").expect("case");
    let href = web_sys::window().expect("a page").location().href().expect("href");
    let url = web_sys::Url::new_with_base(SERVED_MANIFEST, &href).expect("url").href();
    let options = prefetched(&url, &url, &["weights.bpk"]);
    let r = Reranker::load(SERVED_MANIFEST.into(), options).await.expect("prefetched load");
    let got = play(&r, case).await;
    check_parity(case, &got, golden.tolerance());
    let plain = Reranker::load(SERVED_MANIFEST.into(), memory()).await.expect("plain load");
    let want = play(&plain, case).await;
    let ids = |o: &RankingOut| o.items.iter().map(|i| i.item_id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&got), ids(&want));

    let other = prefetched("https://cdn.example/other/manifest.json", &url, &[]);
    let e = Reranker::load(SERVED_MANIFEST.into(), other).await.err().expect("another URL");
    assert_eq!(code(&e), "invalid_input");
    assert_eq!(prop(&e, "field").as_string().as_deref(), Some("options.prefetched"));
    let bad = js(&json!({ "storage": "memory", "prefetched": "weights.bpk" }));
    let e = Reranker::load(SERVED_MANIFEST.into(), bad).await.err().expect("another shape");
    assert_eq!(code(&e), "invalid_input");

    let tampered_href = "/tests/served/tampered-browser/manifest.json";
    let tampered = web_sys::Url::new_with_base(tampered_href, &href).expect("url").href();
    let options = prefetched(&tampered, &tampered, &["weights.bpk", "categories.json"]);
    let e = Reranker::load(tampered_href.into(), options).await.err().expect("tampered");
    assert_eq!(code(&e), "checksum_mismatch");
}

#[wasm_bindgen_test]
fn truncated_or_tampered_weights_are_rejected() {
    let truncated = &WEIGHTS[..WEIGHTS.len() / 2];
    let e = load_err(MANIFEST, truncated, CATEGORIES);
    assert_eq!(code(&e), "checksum_mismatch");
    assert_eq!(prop(&e, "file").as_string().as_deref(), Some("weights.bpk"));

    let mut tampered = WEIGHTS.to_vec();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0x40;
    assert_eq!(code(&load_err(MANIFEST, &tampered, CATEGORIES)), "checksum_mismatch");

    // A truncated file whose manifest was re-hashed to match still fails as a decode error.
    let mut m = manifest_json();
    m["files"]["weights.bpk"] =
        json!({ "sha256": sha256_hex(truncated), "bytes": truncated.len() });
    let m = serde_json::to_vec(&m).expect("json");
    assert_eq!(code(&load_err(&m, truncated, CATEGORIES)), "weights");
}

#[wasm_bindgen_test]
fn wrong_checksum_other_format_and_missing_files_are_rejected() {
    let mut m = manifest_json();
    m["files"]["categories.json"]["sha256"] = json!("00".repeat(32));
    let e = load_err(&serde_json::to_vec(&m).expect("json"), WEIGHTS, CATEGORIES);
    assert_eq!(code(&e), "checksum_mismatch");
    assert_eq!(prop(&e, "file").as_string().as_deref(), Some("categories.json"));

    let mut m = manifest_json();
    m["format_version"] = json!(2);
    let e = load_err(&serde_json::to_vec(&m).expect("json"), WEIGHTS, CATEGORIES);
    assert_eq!(code(&e), "unsupported_format");
    assert_eq!(prop(&e, "found").as_f64(), Some(2.0));

    assert_eq!(code(&load_err(b"{not json", WEIGHTS, CATEGORIES)), "invalid_file");

    let only_weights = Map::new();
    only_weights.set(&"weights.bpk".into(), &Uint8Array::from(WEIGHTS));
    let e = Reranker::from_bytes(MANIFEST, only_weights.into(), memory())
        .err()
        .expect("missing files reject");
    assert_eq!(code(&e), "missing_file");

    // A plain object works like a Map.
    let obj = js_sys::Object::new();
    Reflect::set(&obj, &"weights.bpk".into(), &Uint8Array::from(WEIGHTS).buffer()).expect("set");
    Reflect::set(&obj, &"categories.json".into(), &Uint8Array::from(CATEGORIES)).expect("set");
    assert!(Reranker::from_bytes(MANIFEST, obj.into(), memory()).is_ok());
}

/// A full (server) bundle is refused before anything else is read or fetched: this package
/// has no tokenizer, and the full bundle's megabytes are what the browser bundle avoids.
#[wasm_bindgen_test]
async fn a_full_bundle_is_refused_with_a_pointer_to_its_browser_bundle() {
    let e = Reranker::from_bytes(FULL_MANIFEST, files(WEIGHTS, CATEGORIES), memory())
        .err()
        .expect("full bundle rejects");
    assert_eq!(code(&e), "unsupported_format");
    assert_eq!(prop(&e, "found").as_string().as_deref(), Some("full"));
    assert_eq!(prop(&e, "supported").as_string().as_deref(), Some("browser"));
    let e = Reranker::load(SERVED_FULL_MANIFEST.into(), memory())
        .await
        .err()
        .expect("full bundle rejects over HTTP too");
    assert_eq!(code(&e), "unsupported_format");
}

#[wasm_bindgen_test]
async fn bad_vectors_are_typed_errors() {
    let r = engine();
    let d = serde_json::from_slice::<Value>(MANIFEST).expect("manifest")["config"]["d_model"]
        .as_u64()
        .expect("d_model") as usize;
    r.observe(js(&json!({ "itemId": "6", "vector": vec![0.1; d] }))).expect("observe");
    assert_eq!(
        rerank_field(&r, json!(["9", { "itemId": "12", "vector": [0.5, 0.5] }])).await,
        "candidates[1].vector"
    );
    assert_eq!(
        rerank_field(&r, json!(["9", { "itemId": "12", "vector": "fast" }])).await,
        "candidates[1].vector"
    );
    let mut with_text = vec![json!(0.1); d];
    with_text[1] = json!("x");
    assert_eq!(
        rerank_field(&r, json!(["9", { "itemId": "12", "vector": with_text }])).await,
        "candidates[1].vector[1]"
    );
    let list = js(&json!(["9", { "itemId": "12", "vector": vec![0.1; d] }]));
    let vector =
        Reflect::get(&js_sys::Array::from(&list).get(1), &"vector".into()).expect("vector");
    vector.unchecked_ref::<js_sys::Array>().set(3, JsValue::from_f64(f64::NAN)); // in place (Array::from copies)
    let e = r.rerank(list, JsValue::UNDEFINED).await.expect_err("NaN in a vector rejects");
    assert_eq!(prop(&e, "field").as_string().as_deref(), Some("candidates[1].vector[3]"));
    // An event's vector is checked when it is observed; the session keeps only good events.
    let e = r
        .observe(js(&json!({ "itemId": "7", "vector": [1.0] })))
        .expect_err("short vector rejects");
    assert_eq!(prop(&e, "field").as_string().as_deref(), Some("event.vector"));
    assert_eq!(r.session_length(), 1);
}

/// The page passes vectors with its candidates only; a click on a listed item is observed by
/// id and still gets the item's vector, which the session keeps.
#[wasm_bindgen_test]
async fn vectors_of_listed_items_reach_the_events_that_name_them() {
    let golden: Golden = serde_json::from_str(PARITY).expect("parity.json");
    let case = golden.cases.iter().find(|c| c.name == "five_events_mixed_kinds").expect("case");
    let r = engine();
    r.observe(event_js(&case.session[0])).expect("observe");
    ranking(r.rerank(candidates_js(&case.candidates), JsValue::UNDEFINED).await.expect("rerank"));
    let clicked = &case.candidates[7];
    r.observe(js(&json!({ "itemId": clicked.item_id, "kind": "click" }))).expect("observe by id");
    let events: Vec<Value> =
        serde_wasm_bindgen::from_value(r.session().expect("session")).expect("events");
    let kept: Vec<f32> = serde_json::from_value(events[1]["vector"].clone())
        .expect("the event got the listed vector");
    assert_eq!(Some(&kept), clicked.vector.as_ref());
    // A later call with bare ids scores like the call with vectors.
    let with = ranking(
        r.rerank(candidates_js(&case.candidates), JsValue::UNDEFINED).await.expect("rerank"),
    );
    let ids: Vec<Value> = case.candidates.iter().map(|c| json!(c.item_id)).collect();
    let bare = ranking(r.rerank(js(&Value::Array(ids)), JsValue::UNDEFINED).await.expect("rerank"));
    let order = |x: &RankingOut| x.items.iter().map(|i| i.item_id.clone()).collect::<Vec<_>>();
    assert_eq!(order(&with), order(&bare));
}

/// A result as plain JSON, less its timings (they differ between any two calls).
async fn result_json(r: &Reranker, candidates: JsValue) -> Value {
    let out = r.rerank(candidates, JsValue::UNDEFINED).await.expect("rerank");
    let mut v: Value = serde_wasm_bindgen::from_value(out).expect("plain JSON");
    let o = v.as_object_mut().expect("an object");
    o.remove("millis");
    o.remove("timings");
    v
}

/// A page of the common shape (ids and vectors, numeric ids, `item_id`, `available`) goes
/// through the one-call fast path (`js/bulk.js`); a candidate with `content` sends the whole
/// list through the element-by-element path. Both must give the same result, to the byte.
#[wasm_bindgen_test]
async fn the_one_call_path_and_the_element_by_element_path_agree() {
    let golden: Golden = serde_json::from_str(PARITY).expect("parity.json");
    let case = golden.cases.iter().find(|c| c.name == "fifty_events").expect("case");
    let r = engine();
    for e in &case.session {
        r.observe(event_js(e)).expect("observe");
    }
    let mut cs = case.candidates.clone();
    cs[4].available = false;
    let fast = candidates_js(&cs);
    let array = js_sys::Array::from(&fast);
    // An integer id given as a number, and the snake_case spelling of itemId.
    let numeric = cs.iter().position(|c| c.item_id.parse::<u32>().is_ok()).expect("a numeric id");
    let n: u32 = cs[numeric].item_id.parse().expect("numeric");
    Reflect::set(&array.get(numeric as u32), &"itemId".into(), &JsValue::from(n)).expect("set");
    let snake = array.get(2);
    let id = Reflect::get(&snake, &"itemId".into()).expect("id");
    Reflect::delete_property(snake.unchecked_ref::<js_sys::Object>(), &"itemId".into())
        .expect("delete");
    Reflect::set(&snake, &"item_id".into(), &id).expect("set");
    let fast_out = result_json(&r, fast.clone()).await;
    // The same list with a content field on the last item: the slow path.
    let last = array.get(array.length() - 1);
    Reflect::set(&last, &"content".into(), &js(&json!({ "category": "1" }))).expect("set");
    let slow_out = result_json(&r, fast).await;
    assert_eq!(fast_out, slow_out);
    assert_eq!(fast_out["personalised"], true);
    assert_eq!(fast_out["hidden"][0]["itemId"], json!(cs[4].item_id));
    let ids: Vec<&str> = fast_out["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["itemId"].as_str())
        .collect();
    assert!(ids.contains(&cs[numeric].item_id.as_str()), "a numeric id comes back as its string");
    assert!(
        fast_out["items"][0]["explanation"]
            .as_str()
            .is_some_and(|s| s.starts_with("Because you viewed"))
    );
}

/// An `invalid_input` rejection's field.
async fn rerank_field(r: &Reranker, candidates: Value) -> String {
    let e = r.rerank(js(&candidates), JsValue::UNDEFINED).await.expect_err("rejected");
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
    let content =
        Reflect::get(&js_sys::Array::from(&list).get(1), &"content".into()).expect("content");
    Reflect::set(&content, &"price".into(), &JsValue::from_f64(f64::NAN)).expect("set");
    let e = r.rerank(list, JsValue::UNDEFINED).await.expect_err("NaN price rejects");
    assert_eq!(code(&e), "invalid_input");
    assert_eq!(prop(&e, "field").as_string().as_deref(), Some("candidates[1].content.price"));
    assert_eq!(
        rerank_field(&r, json!(["9", { "itemId": "new", "content": { "price": -3 } }])).await,
        "candidates[1].content.price"
    );

    // The session survived all of that.
    assert_eq!(r.session_length(), 1);
}

#[wasm_bindgen_test]
fn bad_events_are_typed_errors_and_leave_the_session_alone() {
    let r = engine();
    let field = |v: JsValue| {
        let e = r.observe(v).expect_err("rejected");
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
    let got = ranking(
        r.rerank(js(&json!(["9", "12", 19])), JsValue::UNDEFINED).await.expect("empty session"),
    );
    assert!(!got.personalised);
    assert!(got.reason.is_some());
    assert_eq!(got.items.iter().map(|i| i.item_id.as_str()).collect::<Vec<_>>(), ["9", "12", "19"]);

    // Unknown ids in the session and the list: content when given, else the generic vector.
    r.observe(js(&json!({ "itemId": "never-seen", "kind": "click" })))
        .expect("unknown id without content");
    r.observe(js(
        &json!({ "itemId": 6, "kind": "add_to_cart", "timestamp": 1_700_000_000_000.0_f64 }),
    ))
    .expect("numeric id");
    let got = ranking(
        r.rerank(js(&json!(["9", "also-unknown", { "itemId": "new", "content": { "text": "w2408 w26881", "category": 1053, "price": 129.9 } }])), JsValue::UNDEFINED)
            .await
            .expect("unknown candidates are scored"),
    );
    assert!(got.personalised);
    assert_eq!(got.items.len(), 3);
    assert!(got.items.iter().all(|i| i.score.is_finite()));
}

#[wasm_bindgen_test]
async fn the_session_persists_in_session_storage_per_model_version() {
    let storage =
        web_sys::window().and_then(|w| w.session_storage().ok().flatten()).expect("sessionStorage");
    let a = Reranker::from_bytes(MANIFEST, files(WEIGHTS, CATEGORIES), JsValue::UNDEFINED)
        .expect("load");
    a.reset();
    assert_eq!(a.storage(), "sessionStorage");
    a.observe(js(&json!({ "itemId": "6" }))).expect("observe");
    a.observe(js(
        &json!({ "itemId": "9", "kind": "purchase", "timestamp": 1_700_000_000_000.0_f64 }),
    ))
    .expect("observe");
    let key = a.storage_key();
    assert!(key.contains(&a.model_version()));
    assert!(storage.get_item(&key).ok().flatten().is_some());

    // A "reload": a new instance of the same model version sees the session.
    let b = Reranker::from_bytes(MANIFEST, files(WEIGHTS, CATEGORIES), JsValue::UNDEFINED)
        .expect("load");
    assert_eq!(b.session_length(), 2);
    let events: Vec<Value> =
        serde_wasm_bindgen::from_value(b.session().expect("session")).expect("events");
    assert_eq!(events[1]["kind"], "purchase");
    assert_eq!(events[1]["timestamp"].as_f64(), Some(1_700_000_000_000.0));
    assert!(
        ranking(b.rerank(js(&json!(["12", "19"])), JsValue::UNDEFINED).await.expect("rerank"))
            .personalised
    );

    // Corrupt storage is ignored, not fatal.
    storage.set_item(&key, "{garbage").expect("set");
    let c = Reranker::from_bytes(MANIFEST, files(WEIGHTS, CATEGORIES), JsValue::UNDEFINED)
        .expect("load");
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
    use sessionrank_core::{FeatureEncoder, ModelBundle};
    let perf = web_sys::window().and_then(|w| w.performance()).expect("performance");
    let mut t = perf.now();
    let mut lap = |what: &str| {
        let now = perf.now();
        console_log!("cold start: {what}: {:.1} ms", now - t);
        t = now;
    };
    let map: std::collections::BTreeMap<String, Vec<u8>> =
        [("weights.bpk", WEIGHTS), ("categories.json", CATEGORIES)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect();
    lap("copy bytes");
    let bundle = ModelBundle::from_parts(MANIFEST, map).expect("bundle");
    lap("sha256 of every file + manifest");
    let categories = bundle.categories().expect("categories");
    lap("parse categories.json");
    let c = &bundle.manifest.config;
    let encoder = FeatureEncoder::for_browser(
        categories,
        bundle.manifest.features.max_tokens,
        c.max_len,
        c.max_candidates,
    );
    lap("feature encoder");
    let model = c.init(&Device::flex());
    lap("init model (random weights)");
    let _model = sessionrank_core::reranker::load_weights(model, WEIGHTS).expect("weights");
    lap("decode weights.bpk into the model");
    assert_eq!(encoder.n_items(), 0);
}

#[wasm_bindgen_test]
fn timestamps_default_to_now_and_null_means_unknown() {
    let r = engine();
    let before = js_sys::Date::now();
    r.observe(js(&json!({ "itemId": "6" }))).expect("no timestamp");
    r.observe(js(&json!({ "itemId": "9", "timestamp": null }))).expect("null timestamp");
    let events: Vec<Value> =
        serde_wasm_bindgen::from_value(r.session().expect("session")).expect("events");
    let t = events[0]["timestamp"].as_f64().expect("stamped with the call time");
    assert!(t >= (before / 1000.0).floor() * 1000.0 && t <= js_sys::Date::now());
    assert!(events[1]["timestamp"].is_null());
    assert_eq!(events[0]["kind"], "view");
}

/// The shop's rules give the native engine's order in the browser, for every combination of
/// `tests/fixtures/parity-rules.json` (pins, exclusions, unavailable items, boost and bury, a
/// category cap, diversity, a displacement limit, a blend; with and without a session).
#[wasm_bindgen_test]
async fn rules_give_the_native_order() {
    let parity: Golden = serde_json::from_str(PARITY).expect("parity.json");
    let golden: RulesGolden = serde_json::from_str(PARITY_RULES).expect("parity-rules.json");
    let page = parity.cases.iter().find(|c| c.name == golden.page).expect("the page");
    let candidates: Vec<Candidate> = page
        .candidates
        .iter()
        .map(|c| Candidate {
            content: golden.categories.get(&c.item_id).map(|cat| sessionrank_core::ItemContent {
                text: String::new(),
                category: Some(cat.clone()),
                price_level: None,
            }),
            available: !golden.unavailable.contains(&c.item_id),
            ..c.clone()
        })
        .collect();
    let r = engine();
    for case in &golden.cases {
        r.reset();
        if case.with_session {
            for e in &page.session {
                r.observe(event_js(e)).expect("observe");
            }
        }
        let got = ranking(
            r.rerank(candidates_js(&candidates), js(&case.rules)).await.expect("rerank with rules"),
        );
        let order: Vec<&str> = got.items.iter().map(|i| i.item_id.as_str()).collect();
        assert_eq!(order, case.order, "{}: the native order", case.name);
        let hidden: Vec<&str> = got.hidden.iter().map(|h| h.item_id.as_str()).collect();
        assert_eq!(hidden, case.hidden, "{}: hidden", case.name);
        assert!(got.hidden.iter().all(|h| h.reason == "excluded" || h.reason == "unavailable"));
    }
    // Effects and explanations come with the items.
    r.reset();
    for e in &page.session {
        r.observe(event_js(e)).expect("observe");
    }
    let pinned = &candidates[50].item_id;
    let rules = js(&json!({ "pins": { pinned.clone(): 0 }, "diversity": 0.3 }));
    let got = ranking(r.rerank(candidates_js(&candidates), rules).await.expect("pins"));
    assert_eq!(&got.items[0].item_id, pinned);
    assert_eq!(got.items[0].effects["pinned"], json!(0));
    assert!(got.items[0].explanation.starts_with("Placed at position 1 by the shop."));
    assert!(got.items.iter().any(|i| i.effects["diversity"] == json!("up")));
}

/// Rules that are malformed or cannot be met reject with `invalid_rules`, naming the rule.
#[wasm_bindgen_test]
async fn bad_rules_are_typed_errors() {
    let golden: Golden = serde_json::from_str(PARITY).expect("parity.json");
    let case = &golden.cases[0];
    let r = engine();
    for e in &case.session {
        r.observe(event_js(e)).expect("observe");
    }
    let id = &case.candidates[0].item_id;
    for (rules, field) in [
        (json!({ "blend": 2 }), "rules.blend"),
        (json!({ "diversity": -0.5 }), "rules.diversity"),
        (json!({ "pins": { id.clone(): 100 } }), &*format!("rules.pins.{id}")),
        (json!({ "maxDisplacment": 3 }), "rules"),
        (json!("diverse please"), "rules"),
    ] {
        let e = r
            .rerank(candidates_js(&case.candidates), js(&rules))
            .await
            .expect_err("bad rules reject");
        assert_eq!(code(&e), "invalid_rules", "{rules}");
        assert_eq!(prop(&e, "field").as_string().as_deref(), Some(field), "{rules}");
    }
    // `null` and `undefined` are no rules.
    let a = ranking(r.rerank(candidates_js(&case.candidates), JsValue::NULL).await.expect("null"));
    assert!(
        a.hidden.is_empty()
            && a.items.iter().all(|i| i.explanation.is_empty() || !i.because.is_empty())
    );
}

/// A macrotask-long pause (the idle-time warm-up runs one click per macrotask).
async fn pause_ms(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let global = js_sys::global();
        let set_timeout: js_sys::Function = js_sys::Reflect::get(&global, &"setTimeout".into())
            .expect("setTimeout")
            .dyn_into()
            .expect("a function");
        set_timeout.call2(&global, &resolve, &JsValue::from(ms)).expect("scheduled");
    });
    wasm_bindgen_futures::JsFuture::from(promise).await.expect("timer");
}

/// The idle-time warm-up (on by default) runs its synthetic clicks on a shadow engine: the
/// shopper's session stays empty, the answers stay the native golden ones, and `warmUp` is
/// validated like every option.
#[wasm_bindgen_test]
async fn the_idle_warm_up_leaves_the_shoppers_session_and_scores_alone() {
    let golden: Golden = serde_json::from_str(PARITY).expect("parity.json");
    let r = engine();
    // Long enough for all of its clicks (one per macrotask, ~4 ms apart when nested).
    pause_ms(1500).await;
    assert_eq!(r.session_length(), 0, "the warm-up's clicks are not the shopper's");
    let case = golden.cases.iter().find(|c| c.name == "five_events_mixed_kinds").expect("case");
    let got = play(&r, case).await;
    check_parity(case, &got, golden.tolerance());
    assert_eq!(r.session_length(), case.session.len());

    let off = Reranker::from_bytes(
        MANIFEST,
        files(WEIGHTS, CATEGORIES),
        js(&json!({ "storage": "memory", "warmUp": false })),
    )
    .expect("warmUp: false loads");
    check_parity(case, &play(&off, case).await, golden.tolerance());
    let bad = Reranker::from_bytes(
        MANIFEST,
        files(WEIGHTS, CATEGORIES),
        js(&json!({ "storage": "memory", "warmUp": "yes" })),
    )
    .err()
    .expect("a non-boolean warmUp is refused");
    assert_eq!(code(&bad), "invalid_input");
    assert_eq!(prop(&bad, "field").as_string().as_deref(), Some("options.warmUp"));
}
