//! The `Reranker` class JavaScript sees.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use sessionrank_core::BundleKind;
use sessionrank_core::bundle::{MANIFEST, SAFETENSORS, WEIGHTS};
use sessionrank_core::reranker::{MAX_CANDIDATES, SessionState, upstream, upstream_with};
use sessionrank_core::{CoreError, ModelBundle, Prepared, Ranking};
use wasm_bindgen::prelude::*;

use crate::backend::Engines;

use crate::choice::{Backend, Choice};
use crate::error::{Error, ErrorCode, Result};
use crate::js::{describe, now_ms, to_js};
use crate::storage::{Backing, SessionStore};
use crate::vectors::VectorCache;
use crate::{bulk, fetch, shapes};

/// Options of `load` / `fromBytes`.
#[derive(Debug, Clone, Copy)]
struct Options {
    /// Mirror the session to `sessionStorage` (default) or keep it in memory only.
    persist: bool,
    /// `backend`: `"auto"` (default), `"cpu"` or `"webgpu"` (see `choice.rs`).
    backend: Choice,
    /// `warmUp`: the idle-time warm-up after load (default on; see `warm.rs`).
    warm_up: bool,
}

impl Options {
    fn parse(v: &JsValue) -> Result<Self> {
        if v.is_undefined() || v.is_null() {
            return Ok(Self { persist: true, backend: Choice::Auto, warm_up: true });
        }
        let storage = js_sys::Reflect::get(v, &"storage".into())
            .map_err(|e| Error::input("options", describe(&e)))?;
        let persist = match storage.as_string().as_deref() {
            None if storage.is_undefined() => true,
            Some("session") => true,
            Some("memory") => false,
            _ => return Err(Error::input("options.storage", "must be \"session\" or \"memory\"")),
        };
        let warm_up = match js_sys::Reflect::get(v, &"warmUp".into()) {
            Ok(w) if w.is_undefined() => true,
            Ok(w) => {
                w.as_bool().ok_or_else(|| Error::input("options.warmUp", "must be a boolean"))?
            }
            Err(e) => return Err(Error::input("options", describe(&e))),
        };
        Ok(Self { persist, backend: Choice::parse(v)?, warm_up })
    }
}

/// Re-ranks a storefront's candidate list for the shopper's session, in the browser.
///
/// ```js
/// import init, { Reranker, prefetchBundle } from "sessionrank";
/// // A version's browser bundle (no item table): items come as vectors the server computed.
/// const url = "/v1/models/20261123-081327-779a3ef3/browser/manifest.json";
/// const prefetched = prefetchBundle(url); // the bundle downloads while the module compiles
/// await init();
/// const r = await Reranker.load(url, { prefetched });
/// const page = await (await fetch("/v1/candidates")).json();     // {id, vector} per item
/// const list = page.items.map((it) => ({ itemId: it.id, vector: it.vector }));
/// await r.rerank(list);                                 // no session yet: upstream order
/// r.observe({ itemId: list[3].itemId, kind: "click" }); // a listed item: its vector is known
/// const { items } = await r.rerank(list);               // upstream order in, re-ordered out
/// ```
#[wasm_bindgen]
pub struct Reranker {
    /// The CPU engine, and the WebGPU one while it is chosen and healthy.
    pub(crate) engines: Rc<Engines>,
    session: RefCell<SessionStore>,
    /// Vectors of items seen in candidate lists, so `observe({itemId})` after a click on a
    /// listed item knows its vector without the page passing it again.
    vectors: RefCell<VectorCache>,
    /// The session half of the last call and the engine it was computed on: another page
    /// re-ranked before the next click skips the session encoder (core decides when it may).
    session_state: RefCell<Option<(Backend, SessionState)>>,
    /// Where `load` / `fromBytes` spent its time (JS: `loadTimings`).
    load_timings: LoadTimings,
}

/// Where loading went, in milliseconds (`performance.now()`): the start of a page's cold
/// start the package can see (the module's own fetch and compile come before it).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct LoadTimings {
    /// Fetching the manifest and then its files, each hashed by the browser's
    /// `crypto.subtle` as it arrives (0 for `fromBytes`).
    fetch_ms: f64,
    /// Checking every file's sha256 against the manifest (hashing here the files the browser
    /// did not: all of them for `fromBytes`).
    verify_ms: f64,
    /// Decoding the weights and building the CPU engine.
    build_ms: f64,
    /// The backend choice (`load` only; the WebGPU build's warm-up race when it runs).
    choose_ms: f64,
}

#[wasm_bindgen]
impl Reranker {
    /// Fetch a bundle (the manifest, then its files in parallel, relative to the manifest's
    /// URL), verify every sha256 and the format version, and build the model on the CPU (and,
    /// in the WebGPU artefact with `backend` `"auto"`/`"webgpu"`, on WebGPU: the warm-up race
    /// runs before this resolves; `"webgpu"` without a usable adapter rejects with `device`).
    /// Rejects with a `SessionrankError` (`network`, `http_status`, `unsupported_format`,
    /// `checksum_mismatch`, `weights`, …).
    ///
    /// `options.prefetched`: what `prefetchBundle(manifestUrl)` returned, called before
    /// `init()` so the bundle downloads while the module compiles; its responses are read and
    /// checked exactly as this method's own requests (one prefetch serves one load).
    #[wasm_bindgen(unchecked_return_type = "Reranker")]
    pub async fn load(
        #[wasm_bindgen(js_name = manifestUrl)] manifest_url: String,
        #[wasm_bindgen(unchecked_optional_param_type = "RerankerOptions")] options: JsValue,
    ) -> Result<Reranker, JsValue> {
        let prefetched = fetch::Prefetched::parse(&options)?;
        let options = Options::parse(&options)?;
        let t0 = now_ms();
        let manifest_url = fetch::resolve(&manifest_url, None)?;
        if let Some(p) = &prefetched
            && p.url != manifest_url
        {
            return Err(Error::input(
                "options.prefetched",
                format!("was started for {}, not {manifest_url}", p.url),
            )
            .into());
        }
        let manifest_request = match &prefetched {
            Some(p) => p.manifest(),
            None => fetch::start(&manifest_url)?,
        };
        let manifest_bytes = fetch::bytes(&manifest_url, manifest_request).await?;
        // Refuse another format version or kind before downloading anything else.
        let manifest = ModelBundle::parse_manifest(&manifest_bytes).map_err(Error::from)?;
        check_kind(manifest.kind)?;
        let mut started = match &prefetched {
            Some(p) => p.started().await,
            None => BTreeMap::new(),
        };
        let mut pending = Vec::new();
        // Every file the manifest lists (a browser bundle: weights.bpk, categories.json):
        // the prefetch's request where it started one, else a new one.
        for name in manifest.files.keys().filter(|n| n.as_str() != SAFETENSORS) {
            let url = fetch::resolve(name, Some(&manifest_url))?;
            let request = match started.remove(name.as_str()) {
                Some(r) => r,
                None => fetch::start(&url)?,
            };
            pending.push((name, url, request));
        }
        let mut files = BTreeMap::new();
        let mut digests = BTreeMap::new();
        for (name, url, request) in pending {
            let (bytes, digest) = fetch::bytes_and_digest(&url, request).await?;
            if let Some(d) = digest {
                digests.insert(name.to_string(), d);
            }
            files.insert(name.to_string(), bytes);
        }
        let fetch_ms = now_ms() - t0;
        let mut reranker = Self::build(&manifest_bytes, files, &digests, options)?;
        reranker.load_timings.fetch_ms = fetch_ms;
        // The backend choice (WebGPU build): done before `load` resolves.
        let t1 = now_ms();
        reranker.engines.choose().await?;
        reranker.load_timings.choose_ms = now_ms() - t1;
        if options.warm_up {
            crate::warm::spawn(reranker.shadow());
        }
        Ok(reranker)
    }

    /// Build from bytes the page already has: the manifest and a `Map` or plain object of
    /// file name → `Uint8Array` / `ArrayBuffer`: every file the browser manifest lists
    /// (`weights.bpk`, `categories.json`). Verified exactly like `load`.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(
        manifest: &[u8],
        #[wasm_bindgen(
            unchecked_param_type = "Map<string, Uint8Array | ArrayBuffer> | Record<string, Uint8Array | ArrayBuffer>"
        )]
        files: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "RerankerOptions")] options: JsValue,
    ) -> Result<Reranker, JsValue> {
        let options = Options::parse(&options)?;
        let reranker = Self::build(manifest, file_map(&files)?, &BTreeMap::new(), options)?;
        // Synchronous: scores come from the CPU until the choice ends (`await r.ready()`).
        reranker.engines.choose_in_background();
        if options.warm_up {
            crate::warm::spawn(reranker.shadow());
        }
        Ok(reranker)
    }

    /// A second `Reranker` on the same engines with a session of its own in memory (the
    /// idle-time warm-up's: it runs the very methods a page calls, on nothing of the page's).
    pub(crate) fn shadow(&self) -> Reranker {
        let version = &self.engines.cpu().manifest().model_version;
        Reranker {
            engines: Rc::clone(&self.engines),
            session: RefCell::new(SessionStore::open(version, false)),
            vectors: RefCell::new(VectorCache::default()),
            session_state: RefCell::new(None),
            load_timings: self.load_timings,
        }
    }

    /// `digests`: the sha256 of files the browser has already hashed (`load`); the others
    /// are hashed here.
    fn build(
        manifest: &[u8],
        files: BTreeMap<String, Vec<u8>>,
        digests: &BTreeMap<String, String>,
        options: Options,
    ) -> Result<Self> {
        check_kind(ModelBundle::parse_manifest(manifest)?.kind)?;
        let t0 = now_ms();
        let bundle = ModelBundle::from_parts_with_digests(manifest, files, digests)?;
        let t1 = now_ms();
        let engines = Engines::new(&bundle, options.backend)?;
        let load_timings =
            LoadTimings { verify_ms: t1 - t0, build_ms: now_ms() - t1, ..Default::default() };
        let session = SessionStore::open(&engines.cpu().manifest().model_version, options.persist);
        Ok(Self {
            engines,
            session: RefCell::new(session),
            vectors: RefCell::new(VectorCache::default()),
            session_state: RefCell::new(None),
            load_timings,
        })
    }

    /// Record what the shopper did: `{itemId, kind?, timestamp?, vector?, content?}`. `kind` is
    /// `"click"`/`"view"` (default), `"add_to_cart"` or `"purchase"`; `timestamp` is
    /// milliseconds since the epoch (`Date.now()` when absent, `null` for "unknown").
    /// `vector` is the item's vector from the server (`d_model` numbers); without one, the
    /// vector a listed candidate of that id had. An item with neither is encoded from
    /// `content` (`{category, price | priceLevel}`; text needs the tokenizer this package
    /// leaves out), else it counts with the generic "unknown item" vector. A rejected event
    /// leaves the session unchanged.
    pub fn observe(
        &self,
        #[wasm_bindgen(unchecked_param_type = "SessionEvent")] event: JsValue,
    ) -> Result<(), JsValue> {
        let mut event = shapes::event(event, js_sys::Date::now())?;
        let dim = self.engines.cpu().model_dim();
        if let Some(v) = &event.vector {
            // Checked now: a bad vector must not sit in the session and fail every re-rank.
            sessionrank_core::reranker::validate_vector(v, dim, || "event.vector".into())
                .map_err(Error::from)?;
        }
        self.vectors.borrow().fill_event(&mut event, dim);
        // `prepare` is synchronous and never holds this borrow across an await.
        self.session.borrow_mut().push(event);
        Ok(())
    }

    /// Re-rank `candidates` (upstream order; ids or `{itemId, vector?, content?, available?}`)
    /// for the session so far, under the shop's `rules` (optional; see `Rules`: pins,
    /// exclusions, boost and bury, a category cap, diversity, a displacement limit, a blend
    /// with the upstream order — the same function as the native engine's). Resolves to
    /// `{items, personalised, reason, hidden, backend, millis, timings}`; each item says why it
    /// is there (`because`, `effects`, `explanation`). With no events yet, or if the model
    /// fails on this device, the upstream order comes back with `personalised: false` and a
    /// `reason` (the rules still apply to it). Rejects with `invalid_input` for an empty list,
    /// more than 1000 candidates, duplicate or empty ids, NaN or negative prices, and with
    /// `invalid_rules` for rules that are invalid or cannot be met (`field` names the rule).
    ///
    /// A candidate without a `vector` (given now, or by an earlier call for the same id) is
    /// scored from its `content` (category, price); without content it gets the generic
    /// "unknown item" vector (and usually sinks below the others).
    #[wasm_bindgen(unchecked_return_type = "Ranking")]
    pub async fn rerank(
        &self,
        #[wasm_bindgen(unchecked_param_type = "CandidateInput[]")] candidates: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "Rules")] rules: JsValue,
    ) -> Result<JsValue, JsValue> {
        let t0 = now_ms();
        let rules = shapes::rules(rules)?;
        let rules_parse_ms = now_ms() - t0;
        // One call for the common shape of a page; element by element otherwise.
        let dim = self.engines.cpu().model_dim();
        let mut candidates = match bulk::candidates(&candidates, dim, MAX_CANDIDATES)? {
            Some(list) => list,
            None => shapes::candidates(&candidates)?,
        };
        // Remember the page's vectors (a click on a listed item then knows its vector), and
        // give candidates passed as bare ids the vector an earlier page gave them.
        self.vectors.borrow_mut().learn_and_fill(&mut candidates);
        // Only the model's window is read (the stored session keeps up to 200 events).
        let session = {
            let store = self.session.borrow();
            let events = store.events();
            let window = self.engines.cpu().manifest().config.max_len;
            events[events.len().saturating_sub(window)..].to_vec()
        };
        let t1 = now_ms();
        let mut t2;
        let mut rules_ms = rules_parse_ms;
        // At most twice: a WebGPU failure drops the GPU engine and the call runs on the CPU.
        let (mut ranking, backend) = loop {
            let (engine, backend) = self.engines.current();
            let kept = self.session_state.borrow_mut().take();
            let kept = kept.filter(|(b, _)| *b == backend).map(|(_, state)| state);
            let prepared = engine.prepare_cached(&session, &candidates, kept.as_ref()).map(
                |(prepared, state)| {
                    *self.session_state.borrow_mut() = state.map(|s| (backend, s));
                    prepared
                },
            );
            t2 = now_ms();
            let outcome = match prepared {
                Ok(Prepared::Upstream(r)) => {
                    let t = now_ms();
                    let r = upstream_with(r, &rules, &engine.rule_items(&candidates));
                    rules_ms += now_ms() - t;
                    r
                }
                Ok(Prepared::Pending(p)) => match self.engines.read_back(backend, &p).await {
                    Ok((scores, table)) => {
                        let dim = engine.model_dim();
                        p.ranked(&scores, &table, dim).and_then(|items| {
                            let t = now_ms();
                            let list = engine.rule_items(&candidates);
                            let r = p.arranged(items, &scores, &table, dim, &rules, list);
                            rules_ms += now_ms() - t;
                            r
                        })
                    }
                    Err(e) => Err(e),
                },
                Err(e @ CoreError::Device(_)) => Err(e),
                Err(e) => return Err(Error::from(e).into()),
            };
            match outcome {
                Ok(r) => break (r, backend),
                // Rules that cannot be met for this list are the caller's to fix, not a
                // device failure to hide behind the upstream order.
                Err(e @ CoreError::InvalidRules { .. }) => return Err(Error::from(e).into()),
                Err(e) if self.engines.fall_back(backend, &e) => continue,
                Err(e) => break (degraded(&candidates, &e), backend),
            }
        };
        if let Some(why) = self.engines.take_fallback_note() {
            ranking.reason = Some(why);
        }
        let t3 = now_ms();
        if rules.is_neutral() {
            rules_ms = 0.0;
        }
        let timings =
            shapes::Timings { input_ms: t1 - t0, model_ms: t2 - t1, finish_ms: t3 - t2, rules_ms };
        Ok(bulk::ranking(&ranking, backend.as_str(), t3 - t0, timings)?)
    }

    /// Forget the session (memory and `sessionStorage`).
    pub fn reset(&self) {
        self.session.borrow_mut().clear();
        self.session_state.borrow_mut().take();
    }

    /// The session so far (oldest first), in the shape `observe` takes.
    #[wasm_bindgen(unchecked_return_type = "SessionEvent[]")]
    pub fn session(&self) -> Result<JsValue, JsValue> {
        let s = self.session.borrow();
        let events: Vec<shapes::EventOut> = s.events().iter().map(Into::into).collect();
        Ok(to_js(&events)?)
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
        SessionStore::key_for(&self.engines.cpu().manifest().model_version)
    }

    /// The bundle's immutable model version.
    #[wasm_bindgen(getter, js_name = modelVersion)]
    pub fn model_version(&self) -> String {
        self.engines.cpu().manifest().model_version.clone()
    }

    /// The backend scores are computed on now: `"cpu"` or `"webgpu"`.
    #[wasm_bindgen(getter, unchecked_return_type = "\"cpu\" | \"webgpu\"")]
    pub fn backend(&self) -> String {
        self.engines.current().1.as_str().into()
    }

    /// What the backend choice found: `{backend, calls, cpuMs, webgpuMs, reason}` (the
    /// warm-up timings; `reason` says why WebGPU does not score, when it does not).
    #[wasm_bindgen(getter, unchecked_return_type = "BackendReport")]
    pub fn warmup(&self) -> Result<JsValue, JsValue> {
        Ok(to_js(&self.engines.report())?)
    }

    /// Where loading spent its time: `{fetchMs, verifyMs, buildMs, chooseMs}` (milliseconds:
    /// fetching the bundle, checking its checksums, decoding the weights and building the CPU
    /// engine, the backend choice). The module's own fetch and compile come before all of it.
    #[wasm_bindgen(getter, js_name = loadTimings, unchecked_return_type = "LoadTimings")]
    pub fn load_timings(&self) -> Result<JsValue, JsValue> {
        Ok(to_js(&self.load_timings)?)
    }

    /// Resolves to the backend report once the backend choice is made (`fromBytes` makes it
    /// in the background; after `load` it is already made). Rejects with `device` when
    /// `backend: "webgpu"` was asked for and WebGPU is not usable.
    #[wasm_bindgen(unchecked_return_type = "Promise<BackendReport>")]
    pub async fn ready(&self) -> Result<JsValue, JsValue> {
        self.engines.ready().await
    }
}

impl Reranker {
    /// Test hook: the next WebGPU readback fails as on a lost device.
    #[doc(hidden)]
    pub fn fail_next_gpu_call(&self) {
        self.engines.fail_next_gpu_call();
    }
}

/// This package reads browser bundles only (it has no tokenizer): say so before a full
/// bundle's megabytes are fetched.
fn check_kind(kind: BundleKind) -> Result<()> {
    match kind {
        BundleKind::Browser => Ok(()),
        BundleKind::Full => Err(Error::new(
            ErrorCode::UnsupportedFormat,
            "this is a full (server) bundle; browsers load its browser bundle: <version>/browser/manifest.json",
        )
        .with("found", "full")
        .with("supported", "browser")),
    }
}

/// The documented fallback when the model fails at run time: upstream order, with the reason.
fn degraded(candidates: &[sessionrank_core::Candidate], e: &CoreError) -> Ranking {
    upstream(candidates, &format!("the model failed on this device ({e}); upstream order returned"))
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
        let name =
            key.as_string().ok_or_else(|| Error::input("files", "file names must be strings"))?;
        if name == MANIFEST {
            continue;
        }
        let bytes = if let Some(a) = value.dyn_ref::<js_sys::Uint8Array>() {
            a.to_vec()
        } else if value.is_instance_of::<js_sys::ArrayBuffer>() {
            js_sys::Uint8Array::new(&value).to_vec()
        } else {
            return Err(Error::input(
                format!("files[{name:?}]"),
                "expected a Uint8Array or an ArrayBuffer",
            ));
        };
        out.insert(name, bytes);
    }
    if out.is_empty() {
        return Err(
            Error::new(ErrorCode::MissingFile, "no bundle files were given").with("file", WEIGHTS)
        );
    }
    Ok(out)
}

impl crate::warm::Shopper for Reranker {
    fn dims(&self) -> (usize, usize) {
        let engine = self.engines.cpu();
        (engine.model_dim(), engine.manifest().config.max_len)
    }

    fn observe(&self, event: JsValue) -> Result<(), JsValue> {
        Reranker::observe(self, event)
    }

    fn rerank(&self, candidates: JsValue) -> impl Future<Output = Result<JsValue, JsValue>> {
        Reranker::rerank(self, candidates, JsValue::UNDEFINED)
    }

    fn reset(&self) {
        Reranker::reset(self);
    }
}
