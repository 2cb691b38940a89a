//! Small conversions between JavaScript values and Rust, shared by every module that touches
//! JS objects. A leaf: it knows the crate's [`Error`] and nothing else of the crate.

use std::cell::RefCell;

use serde::Serialize;
use wasm_bindgen::{JsCast, JsValue};

use crate::error::{Error, ErrorCode, Result};

/// A short description of a thrown JavaScript value (for messages).
pub fn describe(v: &JsValue) -> String {
    if let Some(e) = v.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    v.as_string().unwrap_or_else(|| format!("{v:?}"))
}

/// `performance.now()` of the page or worker (0 where there is none).
pub fn now_ms() -> f64 {
    js_sys::Reflect::get(&js_sys::global(), &"performance".into())
        .ok()
        .and_then(|p| p.dyn_into::<web_sys::Performance>().ok())
        .map(|p| p.now())
        .unwrap_or(0.0)
}

/// Serialize to plain JS objects and arrays (`null` for `None`).
pub fn to_js<T: Serialize>(v: &T) -> Result<JsValue> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| Error::new(ErrorCode::Device, format!("could not build the result: {e}")))
}

thread_local! {
    /// Property names as JS strings, made once: `"itemId".into()` would decode a new JS
    /// string on every lookup — four per candidate, every click.
    static KEYS: RefCell<Vec<(&'static str, JsValue)>> = const { RefCell::new(Vec::new()) };
}

/// `v[key]`, `undefined` when reading it throws.
pub fn property(v: &JsValue, key: &'static str) -> JsValue {
    KEYS.with(|keys| {
        let mut keys = keys.borrow_mut();
        let k = match keys.iter().find(|(name, _)| *name == key) {
            Some((_, k)) => k.clone(),
            None => {
                let k = JsValue::from_str(key);
                keys.push((key, k.clone()));
                k
            }
        };
        js_sys::Reflect::get(v, &k).unwrap_or(JsValue::UNDEFINED)
    })
}

/// `o[key] = v` (building a plain object in Rust).
pub fn property_set(o: &js_sys::Object, key: &str, v: &JsValue) -> Result<()> {
    js_sys::Reflect::set(o, &JsValue::from_str(key), v)
        .map(|_| ())
        .map_err(|e| Error::new(ErrorCode::Device, describe(&e)))
}

thread_local! {
    /// One reusable `Float32Array` for converting plain arrays of numbers.
    static SCRATCH: RefCell<Option<js_sys::Float32Array>> = const { RefCell::new(None) };
}

/// A JS array of numbers as f32s, in one JS call (`Float32Array.prototype.set`) into a
/// scratch buffer kept across calls. Reading elements one by one costs a boundary crossing
/// each (0.3 ms for a page of 100 × 32); a fresh `Float32Array` per vector allocates an
/// ArrayBuffer each, and those allocations put garbage-collection pauses of ~5 ms into
/// 1-2% of re-ranks (measured: input p99 5.8 ms). A non-number becomes NaN, which the engine
/// rejects naming `…vector[i]` like any other non-finite element.
pub fn numbers(a: &js_sys::Array) -> Vec<f32> {
    let n = a.length();
    SCRATCH.with(|cell| {
        let mut cell = cell.borrow_mut();
        // Every vector of a page has the model's width, so after the first one the buffer
        // has exactly that length and is reused as is (no view object per vector either).
        let scratch = match cell.as_ref() {
            Some(s) if s.length() == n => s.clone(),
            _ => {
                let s = js_sys::Float32Array::new_with_length(n);
                *cell = Some(s.clone());
                s
            }
        };
        scratch.set(a, 0);
        let mut out = vec![0.0f32; n as usize];
        scratch.copy_to(&mut out);
        out
    })
}
