//! The WebGPU artefact in a real browser (`scripts/test-browser`: headless Chromium with
//! `--enable-unsafe-webgpu`, where the adapter is SwiftShader, a CPU emulation of a GPU:
//! correct but ~150x slower than the CPU path, so nothing here asserts a timing).
//!
//! WebGPU scores equal the native golden scores; the `auto` choice reports a valid backend and
//! its warm-up timings; a WebGPU failure at run time falls back to the CPU for good with the
//! session intact.

#![cfg(all(target_family = "wasm", feature = "webgpu"))]

use js_sys::{Map, Reflect, Uint8Array};
use serde::Deserialize;
use serde_json::{Value, json};
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
const PARITY: &str = include_str!("../../../tests/fixtures/parity.json");

/// Where scripts/test-browser copies the fixture bundle (the test server serves the crate dir).
const SERVED_MANIFEST: &str = "/tests/served/bundle-slice-browser/manifest.json";

/// The golden cases; events and candidates stay JSON and go to the package as the page would
/// pass them (snake_case keys are accepted), so fields the fixture gains pass through.
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
    session: Vec<Value>,
    candidates: Vec<Value>,
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
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RankedOut {
    item_id: String,
    score: f32,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    backend: String,
    calls: usize,
    cpu_ms: Option<f64>,
    webgpu_ms: Option<f64>,
    reason: Option<String>,
}

fn js(v: &Value) -> JsValue {
    serde::Serialize::serialize(v, &serde_wasm_bindgen::Serializer::json_compatible())
        .expect("json → js")
}

fn options(backend: &str) -> JsValue {
    js(&json!({ "storage": "memory", "backend": backend }))
}

fn files() -> JsValue {
    let m = Map::new();
    m.set(&"weights.bpk".into(), &Uint8Array::from(WEIGHTS));
    m.set(&"categories.json".into(), &Uint8Array::from(CATEGORIES));
    m.into()
}

fn golden() -> Golden {
    serde_json::from_str(PARITY).expect("parity.json")
}

/// A Reranker on WebGPU (`backend: "webgpu"`: an error where WebGPU is unusable).
async fn on_webgpu() -> Reranker {
    let r =
        Reranker::from_bytes(MANIFEST, files(), options("webgpu")).expect("fixture bundle loads");
    let report: Report = serde_wasm_bindgen::from_value(r.ready().await.unwrap_or_else(|e| {
        panic!(
            "no WebGPU here (Chromium needs --enable-unsafe-webgpu, see webdriver.json): {}",
            describe(&e)
        )
    }))
    .expect("report shape");
    assert_eq!(report.backend, "webgpu", "{report:?}");
    assert_eq!(r.backend(), "webgpu");
    r
}

fn describe(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .unwrap_or_else(|| format!("{e:?}"))
}

/// `observe`'s shape of a golden event: the engine's seconds become `Date.now()` milliseconds.
fn event_js(e: &Value) -> JsValue {
    let mut e = e.clone();
    if let Some(t) = e.get("timestamp").and_then(Value::as_f64) {
        e["timestamp"] = json!(t * 1000.0);
    }
    js(&e)
}

async fn play(r: &Reranker, case: &Case) -> RankingOut {
    r.reset();
    for e in &case.session {
        r.observe(event_js(e)).expect("observe");
    }
    rerank(r, case).await
}

async fn rerank(r: &Reranker, case: &Case) -> RankingOut {
    let v = r
        .rerank(js(&Value::Array(case.candidates.clone())), JsValue::UNDEFINED)
        .await
        .expect("rerank");
    serde_wasm_bindgen::from_value(v).expect("ranking shape")
}

/// Max |diff| against the golden scores; asserts the scores and the top-10 (`golden`).
fn check_parity(case: &Case, got: &RankingOut, tolerance: Tolerance) -> f32 {
    assert_eq!(got.personalised, case.expected.personalised, "{}: {:?}", case.name, got.reason);
    let candidates = case
        .candidates
        .iter()
        .map(|c| {
            c.get("item_id")
                .or_else(|| c.get("itemId"))
                .and_then(Value::as_str)
                .expect("candidate id")
        })
        .collect();
    let want = GoldenCase {
        name: &case.name,
        candidates,
        scores: &case.expected.scores,
        top10: &case.expected.top10,
    };
    let ranked: Vec<(&str, f32)> =
        got.items.iter().map(|i| (i.item_id.as_str(), i.score)).collect();
    golden::assert_matches(&want, &ranked, tolerance)
}

fn code(e: &JsValue) -> String {
    Reflect::get(e, &"code".into())
        .ok()
        .and_then(|c| c.as_string())
        .expect("a SessionrankError code")
}

#[wasm_bindgen_test]
async fn webgpu_scores_equal_the_native_golden_scores() {
    let golden = golden();
    let r = on_webgpu().await;
    let mut worst = 0.0f32;
    for case in &golden.cases {
        let got = play(&r, case).await;
        assert_eq!(got.backend, "webgpu", "{}", case.name);
        worst = worst.max(check_parity(case, &got, golden.tolerance()));
    }
    console_log!("webgpu parity: {} cases, max |diff| = {worst:e}", golden.cases.len());
}

#[wasm_bindgen_test]
async fn auto_chooses_a_valid_backend_and_reports_the_warm_up() {
    let r = Reranker::load(SERVED_MANIFEST.into(), options("auto")).await.unwrap_or_else(|e| {
        panic!("load {SERVED_MANIFEST} (scripts/test-browser copies it there): {}", describe(&e))
    });
    let report: Report =
        serde_wasm_bindgen::from_value(r.warmup().expect("warmup")).expect("report shape");
    console_log!("auto: {report:?}");
    assert!(report.backend == "cpu" || report.backend == "webgpu", "{report:?}");
    assert_eq!(r.backend(), report.backend);
    // WebGPU exists here, so both backends were timed.
    assert!(
        report.calls > 0
            && report.cpu_ms.is_some_and(|m| m >= 0.0)
            && report.webgpu_ms.is_some_and(|m| m > 0.0),
        "{report:?}"
    );
    assert_eq!(report.reason.is_some(), report.backend == "cpu", "{report:?}");
    // Whatever won scores like the native engine.
    let golden = golden();
    let case = golden.cases.iter().find(|c| c.expected.personalised).expect("a personalised case");
    let got = play(&r, case).await;
    assert_eq!(got.backend, report.backend);
    check_parity(case, &got, golden.tolerance());
}

#[wasm_bindgen_test]
async fn a_webgpu_failure_falls_back_to_the_cpu_with_the_session_intact() {
    let golden = golden();
    let case = golden.cases.iter().find(|c| c.expected.personalised).expect("a personalised case");
    let r = on_webgpu().await;
    let first = play(&r, case).await;
    assert_eq!(first.backend, "webgpu");
    let events = r.session_length();

    r.fail_next_gpu_call();
    let fallen = rerank(&r, case).await;
    assert_eq!(fallen.backend, "cpu");
    assert!(
        fallen.reason.as_deref().is_some_and(|m| m.contains("WebGPU failed")),
        "{:?}",
        fallen.reason
    );
    // The same session, now scored on the CPU: still personalised, still the native scores.
    assert_eq!(r.session_length(), events);
    check_parity(case, &fallen, golden.tolerance());

    // For good, and said once.
    let after = rerank(&r, case).await;
    assert_eq!((after.backend.as_str(), after.reason.as_deref()), ("cpu", None));
    assert_eq!(r.backend(), "cpu");
    let report: Report =
        serde_wasm_bindgen::from_value(r.warmup().expect("warmup")).expect("report shape");
    assert_eq!(report.backend, "cpu");
    assert!(report.reason.as_deref().is_some_and(|m| m.contains("WebGPU failed")), "{report:?}");
}

#[wasm_bindgen_test]
fn an_unknown_backend_option_is_a_typed_error() {
    let e = Reranker::from_bytes(MANIFEST, files(), options("gpu")).err().expect("refused");
    assert_eq!(code(&e), "invalid_input");
    assert_eq!(
        Reflect::get(&e, &"field".into()).ok().and_then(|f| f.as_string()).as_deref(),
        Some("options.backend")
    );
}
