//! The `backend` option in the CPU-only artefact (`scripts/test-browser`): `"auto"` and
//! `"cpu"` are the CPU, `"webgpu"` is a `device` error that points to the WebGPU artefact.
//! (The WebGPU artefact's own tests are tests/webgpu.rs.)

#![cfg(all(target_family = "wasm", not(feature = "webgpu")))]

use js_sys::{Map, Reflect, Uint8Array};
use serde_json::json;
use sessionrank_wasm::Reranker;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const MANIFEST: &[u8] =
    include_bytes!("../../../tests/fixtures/bundle-slice-browser/manifest.json");
const WEIGHTS: &[u8] = include_bytes!("../../../tests/fixtures/bundle-slice-browser/weights.bpk");
const CATEGORIES: &[u8] =
    include_bytes!("../../../tests/fixtures/bundle-slice-browser/categories.json");

fn load(backend: Option<&str>) -> Result<Reranker, JsValue> {
    let files = Map::new();
    files.set(&"weights.bpk".into(), &Uint8Array::from(WEIGHTS));
    files.set(&"categories.json".into(), &Uint8Array::from(CATEGORIES));
    let options = match backend {
        Some(b) => json!({ "storage": "memory", "backend": b }),
        None => json!({ "storage": "memory" }),
    };
    let options =
        serde::Serialize::serialize(&options, &serde_wasm_bindgen::Serializer::json_compatible())
            .expect("json → js");
    Reranker::from_bytes(MANIFEST, files.into(), options)
}

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

#[wasm_bindgen_test]
async fn auto_and_cpu_are_the_cpu_here() {
    for backend in [None, Some("auto"), Some("cpu")] {
        let r = load(backend).expect("loads");
        let report = r.ready().await.expect("ready");
        assert_eq!(r.backend(), "cpu");
        assert_eq!(get(&report, "backend").as_string().as_deref(), Some("cpu"));
        assert!(
            get(&report, "reason").as_string().is_some(),
            "{backend:?}: the report says why not WebGPU"
        );
    }
}

#[wasm_bindgen_test]
fn webgpu_is_a_device_error_in_the_cpu_build() {
    let e = load(Some("webgpu")).err().expect("refused");
    assert_eq!(get(&e, "name").as_string().as_deref(), Some("SessionrankError"));
    assert_eq!(get(&e, "code").as_string().as_deref(), Some("device"));
    assert!(get(&e, "message").as_string().is_some_and(|m| m.contains("sessionrank_webgpu")));
}
