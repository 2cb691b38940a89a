//! The WebGPU engine (`--features webgpu`, the `sessionrank_webgpu` artefact): the browser's
//! GPU device, started once per page, and the warm-up race against the CPU.
//!
//! The race exists because WebGPU is not automatically faster here: the model is small, so a
//! call is dominated by dispatch and by the asynchronous readback (~0.5 ms in Chrome, ~100 ms
//! in Firefox), while the CPU path costs well under a millisecond. Both engines run the same
//! warm-up calls (one untimed call first: it compiles the shaders) and the faster median wins.

use std::cell::RefCell;
use std::rc::Rc;

use burn::tensor::Device;
use serde_json::json;
use sessionrank_core::{Candidate, ModelBundle, Reranker as Engine, SessionEvent};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use crate::choice::{Backend, Choice, Warmup};
use crate::error::{Error, ErrorCode, Result};
use crate::js::now_ms;
use crate::score::score;

/// Timed warm-up calls per backend (after one untimed call). Small on purpose: on a software
/// adapter (SwiftShader) one WebGPU call takes ~0.5 s.
pub const WARMUP_CALLS: usize = 5;

/// The page's WebGPU device. burn registers a wgpu runtime once per selector (a second
/// `init_async` is an error), so every `Reranker` of the page shares the first outcome.
enum Slot {
    Untried,
    Starting,
    Ready(Device),
    Unavailable(String),
}

thread_local! {
    static DEVICE: RefCell<Slot> = const { RefCell::new(Slot::Untried) };
}

/// The WebGPU device, started on first use; `Err` says why there is none (no `navigator.gpu`,
/// no adapter, the adapter refused a device).
pub async fn device() -> Result<Device, String> {
    loop {
        let state = DEVICE.with(|d| match &*d.borrow() {
            Slot::Untried => None,
            Slot::Starting => Some(None),
            Slot::Ready(device) => Some(Some(Ok(device.clone()))),
            Slot::Unavailable(why) => Some(Some(Err(why.clone()))),
        });
        match state {
            None => break,
            // Another `Reranker` of this page is starting it: wait for its outcome.
            Some(None) => sleep_ms(10).await,
            Some(Some(outcome)) => return outcome,
        }
    }
    DEVICE.with(|d| *d.borrow_mut() = Slot::Starting);
    let outcome = Device::wgpu_options().init_async().await.map_err(|e| e.to_string());
    DEVICE.with(|d| {
        *d.borrow_mut() = match &outcome {
            Ok(device) => Slot::Ready(device.clone()),
            Err(why) => Slot::Unavailable(why.clone()),
        }
    });
    outcome
}

/// Build the WebGPU engine from `bundle` and race it against `cpu`. `Auto` keeps the faster
/// (and the CPU on any WebGPU failure, with the reason); `WebGpu` keeps WebGPU whenever it
/// works and is a `device` error when it does not.
pub async fn choose(
    cpu: &Engine,
    bundle: &ModelBundle,
    choice: Choice,
) -> Result<(Option<Rc<Engine>>, Warmup)> {
    let forced = choice == Choice::WebGpu;
    let give_up = |why: String| -> Result<(Option<Rc<Engine>>, Warmup)> {
        if forced {
            Err(Error::new(
                ErrorCode::Device,
                format!("backend \"webgpu\" is not available: {why}"),
            ))
        } else {
            Ok((None, Warmup::cpu(why)))
        }
    };
    let device = match device().await {
        Ok(d) => d,
        Err(why) => return give_up(format!("no WebGPU device ({why})")),
    };
    let gpu = match Engine::from_bundle(bundle, &device) {
        Ok(e) => e,
        Err(e) => return give_up(format!("the model could not be built on WebGPU ({e})")),
    };
    let (session, candidates) = warmup_inputs(cpu.model_dim());
    let webgpu_ms = match time(&gpu, &session, &candidates).await {
        Ok(ms) => ms,
        Err(e) => return give_up(format!("the WebGPU warm-up failed ({e})")),
    };
    // A CPU failure here would fail every call too; it is not a reason to prefer the GPU.
    let cpu_ms = time(cpu, &session, &candidates).await.ok();
    let gpu_wins = forced || cpu_ms.is_none_or(|c| webgpu_ms < c);
    let backend = if gpu_wins { Backend::WebGpu } else { Backend::Cpu };
    let reason = (!gpu_wins).then(|| {
        format!(
            "the CPU was faster in the warm-up ({:.2} ms vs {webgpu_ms:.2} ms per call)",
            cpu_ms.unwrap_or(0.0)
        )
    });
    let report = Warmup {
        backend: backend.as_str(),
        calls: WARMUP_CALLS,
        cpu_ms,
        webgpu_ms: Some(webgpu_ms),
        reason,
    };
    Ok((gpu_wins.then(|| Rc::new(gpu)), report))
}

/// Median wall time of [`WARMUP_CALLS`] calls, after one untimed call.
async fn time(
    engine: &Engine,
    session: &[SessionEvent],
    candidates: &[Candidate],
) -> Result<f64, sessionrank_core::CoreError> {
    score(engine, session, candidates).await?;
    let mut ms = Vec::with_capacity(WARMUP_CALLS);
    for _ in 0..WARMUP_CALLS {
        let t = now_ms();
        score(engine, session, candidates).await?;
        ms.push(now_ms() - t);
    }
    ms.sort_by(f64::total_cmp);
    Ok(ms[ms.len() / 2])
}

/// A storefront-sized call: 50 events over 25 items and 100 candidates, each with a vector
/// (how a page passes items to a browser bundle). Built through serde so fields the engine's
/// types gain later keep their defaults.
fn warmup_inputs(d: usize) -> (Vec<SessionEvent>, Vec<Candidate>) {
    let vector = |i: usize| -> Vec<f32> {
        (0..d).map(|j| (((i * 31 + j * 17) % 13) as f32 / 13.0 - 0.5) * 0.2).collect()
    };
    let session = (0..50)
        .filter_map(|k| {
            let e = json!({ "item_id": format!("warmup-{}", k % 25), "kind": "view", "timestamp": 1_700_000_000 + 20 * k, "vector": vector(k % 25) });
            serde_json::from_value(e).ok()
        })
        .collect();
    let candidates = (0..100)
        .filter_map(|k| {
            serde_json::from_value(
                json!({ "item_id": format!("warmup-{}", 100 + k), "vector": vector(100 + k) }),
            )
            .ok()
        })
        .collect();
    (session, candidates)
}

/// Resolve after `ms` milliseconds (`setTimeout` of the page or worker).
async fn sleep_ms(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let set_timeout = js_sys::Reflect::get(&js_sys::global(), &"setTimeout".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
        match set_timeout {
            Some(f) => {
                let _ = f.call2(&JsValue::NULL, &resolve, &ms.into());
            }
            None => {
                let _ = resolve.call0(&JsValue::NULL);
            }
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}
