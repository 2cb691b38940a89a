//! Idle-time warm-up of the engine, after `load`.
//!
//! Why: V8 compiles a wasm function the first time it runs (lazily, with its baseline
//! compiler) and optimises it only after it has run for a while. A shopper's first clicks
//! would pay for both: measured on the width-64 / 2-layer model, the first re-rank of a fresh
//! page took ~10 ms (~50 ms before the host path) and the next ones 1-3 ms, against ~0.4 ms
//! once optimised. Here a few dozen clicks of a synthetic session run through the very
//! methods a page calls (`observe`, then `rerank` on a page of 100 candidates with vectors,
//! JS conversion in and out included) on a shadow `Reranker`: the same engines, its own
//! session in memory — the shopper's session, storage and caches are not touched. One click
//! per macrotask, so a real call never waits for more than one of them. The cost is that CPU
//! time once per page (~50-100 ms of one core); `{warmUp: false}` skips it.

use sessionrank_core::reranker::MAX_CANDIDATES;
use wasm_bindgen::{JsCast, JsValue};

use crate::js::property_set;

/// Warm-up clicks: enough for V8 to optimise the hot functions (measured: 50 took the
/// first 20 clicks from p50 2-3 ms to 0.45 ms), few enough to cost under 0.1 s of one core.
pub const CLICKS: usize = 64;

/// Candidates per warm-up call (a storefront page).
const CANDIDATES: usize = 100;

/// What the warm-up drives: the page's API (`Reranker`'s methods), on a shadow instance.
/// A trait here, so that this module does not name the `Reranker` that starts it.
pub trait Shopper: 'static {
    /// Width of the model's vectors and its session window.
    fn dims(&self) -> (usize, usize);
    fn observe(&self, event: JsValue) -> Result<(), JsValue>;
    fn rerank(&self, candidates: JsValue) -> impl Future<Output = Result<JsValue, JsValue>>;
    fn reset(&self);
}

/// Run the warm-up on `shadow` in the background (spawned; a failure only ends it early).
pub fn spawn(shadow: impl Shopper) {
    wasm_bindgen_futures::spawn_local(async move {
        let _ = run(&shadow).await;
    });
}

async fn run(shadow: &impl Shopper) -> Result<(), JsValue> {
    let (d, window) = shadow.dims();
    let window = window.max(1);
    // Deterministic vectors (a small linear congruential sequence): nothing random is needed,
    // only values of the size real vectors have.
    let mut seed = 0x2545_f491u32;
    let mut vector = || -> js_sys::Array {
        (0..d)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                JsValue::from_f64(f64::from(seed >> 8) / f64::from(1u32 << 24) - 0.5)
            })
            .collect()
    };
    let page = js_sys::Array::new();
    for i in 0..CANDIDATES.min(MAX_CANDIDATES) {
        let c = js_sys::Object::new();
        property_set(&c, "itemId", &JsValue::from_str(&format!("warm-up-{i}")))?;
        property_set(&c, "vector", &vector())?;
        page.push(&c);
    }
    let mut length = 0;
    for k in 0..CLICKS {
        yield_to_the_page().await?;
        if length >= window {
            shadow.reset();
            length = 0;
        }
        let event = js_sys::Object::new();
        property_set(&event, "itemId", &JsValue::from_str(&format!("warm-up-{}", k % CANDIDATES)))?;
        property_set(
            &event,
            "kind",
            &JsValue::from_str(if k % 7 == 3 { "add_to_cart" } else { "view" }),
        )?;
        property_set(&event, "timestamp", &JsValue::from_f64(1.7e12 + 20_000.0 * k as f64))?;
        shadow.observe(event.into())?;
        shadow.rerank(page.clone().into()).await?;
        length += 1;
    }
    Ok(())
}

/// A macrotask boundary (`setTimeout(0)`, on a page or in a worker): the page's own work and
/// the shopper's calls run between two warm-up clicks.
async fn yield_to_the_page() -> Result<(), JsValue> {
    let global = js_sys::global();
    let set_timeout: js_sys::Function =
        js_sys::Reflect::get(&global, &"setTimeout".into())?.dyn_into()?;
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = set_timeout.call2(&global, &resolve, &JsValue::from(0));
    });
    wasm_bindgen_futures::JsFuture::from(promise).await.map(|_| ())
}
