//! The `Reranker` class JavaScript sees.

use std::cell::RefCell;
use std::collections::BTreeMap;

use burn::tensor::Device;
use sessionrank_core::bundle::{ITEMS, MANIFEST, TOKENIZER, WEIGHTS};
use sessionrank_core::reranker::upstream;
use sessionrank_core::{CoreError, ModelBundle, Prepared, Ranking};
use wasm_bindgen::prelude::*;

use crate::error::{Error, ErrorCode, Result, describe};
use crate::storage::{Backing, SessionStore};
use crate::{fetch, shapes};

/// Name of the CPU backend in results (`backend` field).
const CPU: &str = "cpu";

/// Options of `load` / `fromBytes`.
#[derive(Debug, Clone, Copy)]
struct Options {
    /// Mirror the session to `sessionStorage` (default) or keep it in memory only.
    persist: bool,
}

impl Options {
    fn parse(v: &JsValue) -> Result<Self> {
        if v.is_undefined() || v.is_null() {
            return Ok(Self { persist: true });
        }
        let storage = js_sys::Reflect::get(v, &"storage".into()).map_err(|e| Error::input("options", describe(&e)))?;
        let persist = match storage.as_string().as_deref() {
            None if storage.is_undefined() => true,
            Some("session") => true,
            Some("memory") => false,
            _ => return Err(Error::input("options.storage", "must be \"session\" or \"memory\"")),
        };
        Ok(Self { persist })
    }
}

/// Re-ranks a storefront's candidate list for the shopper's session, in the browser.
///
/// ```js
/// import init, { Reranker } from "sessionrank";
/// await init();
/// const r = await Reranker.load("/models/20261123-081327-779a3ef3/manifest.json");
/// r.observe({ itemId: "123", kind: "click" });            // after every click
/// const { items } = await r.rerank(["9", "12", "19"]);    // upstream order in, re-ordered out
/// ```
#[wasm_bindgen]
pub struct Reranker {
    engine: sessionrank_core::Reranker,
    session: RefCell<SessionStore>,
}

#[wasm_bindgen]
impl Reranker {
    /// Fetch a bundle (the manifest, then its files in parallel, relative to the manifest's
    /// URL), verify every sha256 and the format version, and build the model on the CPU.
    /// Rejects with a `SessionrankError` (`network`, `http_status`, `unsupported_format`,
    /// `checksum_mismatch`, `weights`, …).
    #[wasm_bindgen(unchecked_return_type = "Reranker")]
    pub async fn load(
        #[wasm_bindgen(js_name = manifestUrl)] manifest_url: String,
        #[wasm_bindgen(unchecked_optional_param_type = "RerankerOptions")] options: JsValue,
    ) -> Result<Reranker, JsValue> {
        let options = Options::parse(&options)?;
        let manifest_url = fetch::resolve(&manifest_url, None)?;
        let manifest_bytes = fetch::bytes(&manifest_url, fetch::start(&manifest_url)?).await?;
        // Refuse another format version before downloading megabytes of weights.
        ModelBundle::parse_manifest(&manifest_bytes).map_err(Error::from)?;
        let mut pending = Vec::new();
        for name in [WEIGHTS, TOKENIZER, ITEMS] {
            let url = fetch::resolve(name, Some(&manifest_url))?;
            let request = fetch::start(&url)?;
            pending.push((name, url, request));
        }
        let mut files = BTreeMap::new();
        for (name, url, request) in pending {
            files.insert(name.to_string(), fetch::bytes(&url, request).await?);
        }
        Ok(Self::build(&manifest_bytes, files, options)?)
    }

    /// Build from bytes the page already has: the manifest and a `Map` or plain object of
    /// file name → `Uint8Array` / `ArrayBuffer` (at least `weights.bpk`, `tokenizer.json`,
    /// `items.json`). Verified exactly like `load`.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(
        manifest: &[u8],
        #[wasm_bindgen(unchecked_param_type = "Map<string, Uint8Array | ArrayBuffer> | Record<string, Uint8Array | ArrayBuffer>")] files: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "RerankerOptions")] options: JsValue,
    ) -> Result<Reranker, JsValue> {
        let options = Options::parse(&options)?;
        Ok(Self::build(manifest, file_map(&files)?, options)?)
    }

    fn build(manifest: &[u8], files: BTreeMap<String, Vec<u8>>, options: Options) -> Result<Self> {
        let bundle = ModelBundle::from_parts(manifest, files)?;
        let engine = sessionrank_core::Reranker::from_bundle(&bundle, &Device::flex())?;
        let session = SessionStore::open(&engine.manifest().model_version, options.persist);
        Ok(Self { engine, session: RefCell::new(session) })
    }

    /// Record what the shopper did: `{itemId, kind?, timestamp?, content?}`. `kind` is
    /// `"click"`/`"view"` (default), `"add_to_cart"` or `"purchase"`; `timestamp` is
    /// milliseconds since the epoch (`Date.now()` when absent, `null` for "unknown").
    /// `content` describes an item the bundle may not know (`{text, category, price |
    /// priceLevel}`); an unknown item without content counts with the generic "unknown item"
    /// vector. A rejected event leaves the session unchanged.
    pub fn observe(&self, #[wasm_bindgen(unchecked_param_type = "SessionEvent")] event: JsValue) -> Result<(), JsValue> {
        let event = shapes::event(event, js_sys::Date::now())?;
        // `prepare` is synchronous and never holds this borrow across an await.
        self.session.borrow_mut().push(event);
        Ok(())
    }

    /// Re-rank `candidates` (upstream order; ids or `{itemId, content?}`) for the session so
    /// far. Resolves to `{items, personalised, reason, backend, millis}`. With no events yet,
    /// or if the model fails on this device, the upstream order comes back with
    /// `personalised: false` and a `reason`. Rejects with `invalid_input` for an empty list, more
    /// than 1000 candidates, duplicate or empty ids, NaN or negative prices.
    ///
    /// Candidates the bundle does not know are scored from their `content`; without content
    /// they get the generic "unknown item" vector (and usually sink below known items).
    #[wasm_bindgen(unchecked_return_type = "Ranking")]
    pub async fn rerank(&self, #[wasm_bindgen(unchecked_param_type = "CandidateInput[]")] candidates: JsValue) -> Result<JsValue, JsValue> {
        let t0 = now_ms();
        let candidates = shapes::candidates(&candidates)?;
        let session = self.session.borrow().events().to_vec();
        let t1 = now_ms();
        let prepared = self.engine.prepare(&session, &candidates);
        let t2 = now_ms();
        let ranking = match prepared {
            Ok(Prepared::Upstream(r)) => r,
            Ok(Prepared::Pending(p)) => match read_back(&p).await {
                Ok((scores, table)) => match p.finish(&scores, &table, self.engine.model_dim()) {
                    Ok(r) => r,
                    Err(e) => degraded(&candidates, &e),
                },
                Err(e) => degraded(&candidates, &e),
            },
            Err(e @ CoreError::Device(_)) => degraded(&candidates, &e),
            Err(e) => return Err(Error::from(e).into()),
        };
        let t3 = now_ms();
        let timings = shapes::Timings { input_ms: t1 - t0, model_ms: t2 - t1, finish_ms: t3 - t2 };
        Ok(shapes::to_js(&shapes::RankingOut::new(ranking, CPU, t3 - t0, timings))?)
    }

    /// Forget the session (memory and `sessionStorage`).
    pub fn reset(&self) {
        self.session.borrow_mut().clear();
    }

    /// The session so far (oldest first), in the shape `observe` takes.
    #[wasm_bindgen(unchecked_return_type = "SessionEvent[]")]
    pub fn session(&self) -> Result<JsValue, JsValue> {
        let s = self.session.borrow();
        let events: Vec<shapes::EventOut> = s.events().iter().map(Into::into).collect();
        Ok(shapes::to_js(&events)?)
    }

    /// Events in the session.
    #[wasm_bindgen(getter, js_name = sessionLength)]
    pub fn session_length(&self) -> usize {
        self.session.borrow().events().len()
    }

    /// Where the session is kept: `"sessionStorage"` or `"memory"` (no storage available,
    /// storage failed, or `{storage: "memory"}` was asked for).
    #[wasm_bindgen(getter, unchecked_return_type = "\"sessionStorage\" | \"memory\"")]
    pub fn storage(&self) -> String {
        match self.session.borrow().backing() {
            Backing::SessionStorage => "sessionStorage".into(),
            Backing::Memory => "memory".into(),
        }
    }

    /// The `sessionStorage` key of this model version's session.
    #[wasm_bindgen(getter, js_name = storageKey)]
    pub fn storage_key(&self) -> String {
        SessionStore::key_for(&self.engine.manifest().model_version)
    }

    /// The bundle's immutable model version.
    #[wasm_bindgen(getter, js_name = modelVersion)]
    pub fn model_version(&self) -> String {
        self.engine.manifest().model_version.clone()
    }

    /// The backend scores are computed on (`"cpu"`).
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        CPU.into()
    }
}

/// Scores and item table, read back without blocking (the only readback WebGPU allows).
async fn read_back(p: &sessionrank_core::reranker::PendingRanking) -> std::result::Result<(Vec<f32>, Vec<f32>), CoreError> {
    let read = |d: burn::tensor::TensorData| d.convert::<f32>().try_into_vec::<f32>().map_err(|e| CoreError::Device(format!("{e:?}")));
    let scores = p.scores.clone().into_data_async().await.map_err(|e| CoreError::Device(format!("{e:?}")))?;
    let table = p.table.clone().into_data_async().await.map_err(|e| CoreError::Device(format!("{e:?}")))?;
    Ok((read(scores)?, read(table)?))
}

/// The documented fallback when the model fails at run time: upstream order, with the reason.
fn degraded(candidates: &[sessionrank_core::Candidate], e: &CoreError) -> Ranking {
    upstream(candidates, &format!("the model failed on this device ({e}); upstream order returned"))
}

/// `performance.now()` of the page or worker (0 where there is none).
fn now_ms() -> f64 {
    js_sys::Reflect::get(&js_sys::global(), &"performance".into())
        .ok()
        .and_then(|p| p.dyn_into::<web_sys::Performance>().ok())
        .map(|p| p.now())
        .unwrap_or(0.0)
}

/// A `Map` or plain object of file name → bytes.
fn file_map(files: &JsValue) -> Result<BTreeMap<String, Vec<u8>>> {
    let entries: Vec<(JsValue, JsValue)> = if let Some(map) = files.dyn_ref::<js_sys::Map>() {
        let mut v = Vec::new();
        map.for_each(&mut |value, key| v.push((key, value)));
        v
    } else if files.is_object() {
        js_sys::Object::entries(files.unchecked_ref())
            .iter()
            .filter_map(|e| {
                let pair = e.dyn_into::<js_sys::Array>().ok()?;
                Some((pair.get(0), pair.get(1)))
            })
            .collect()
    } else {
        return Err(Error::input("files", "expected a Map or an object of file name → Uint8Array"));
    };
    let mut out = BTreeMap::new();
    for (key, value) in entries {
        let name = key.as_string().ok_or_else(|| Error::input("files", "file names must be strings"))?;
        if name == MANIFEST {
            continue;
        }
        let bytes = if let Some(a) = value.dyn_ref::<js_sys::Uint8Array>() {
            a.to_vec()
        } else if value.is_instance_of::<js_sys::ArrayBuffer>() {
            js_sys::Uint8Array::new(&value).to_vec()
        } else {
            return Err(Error::input(format!("files[{name:?}]"), "expected a Uint8Array or an ArrayBuffer"));
        };
        out.insert(name, bytes);
    }
    if out.is_empty() {
        return Err(Error::new(ErrorCode::MissingFile, "no bundle files were given").with("file", WEIGHTS));
    }
    Ok(out)
}
