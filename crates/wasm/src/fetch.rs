//! Fetching bundle files with the page's (or the worker's) `fetch`.

use std::collections::BTreeMap;

use js_sys::{Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Response, Url, Window, WorkerGlobalScope};

use crate::error::{Error, ErrorCode, Result};
use crate::js::describe;

/// The global scope: a page or a (module) worker.
enum Scope {
    Window(Window),
    Worker(WorkerGlobalScope),
}

fn scope() -> Option<Scope> {
    let g = js_sys::global();
    if let Some(w) = g.dyn_ref::<Window>() {
        return Some(Scope::Window(w.clone()));
    }
    g.dyn_ref::<WorkerGlobalScope>().map(|w| Scope::Worker(w.clone()))
}

/// `location.href` of the page or worker, the base of relative URLs.
fn base_href() -> Option<String> {
    match scope()? {
        Scope::Window(w) => w.location().href().ok(),
        Scope::Worker(w) => Some(w.location().href()),
    }
}

/// Absolute URL of `url` resolved against `base` (or the page's location).
pub fn resolve(url: &str, base: Option<&str>) -> Result<String> {
    let base = base.map(str::to_string).or_else(base_href);
    let parsed = match &base {
        Some(b) => Url::new_with_base(url, b),
        None => Url::new(url),
    };
    parsed.map(|u| u.href()).map_err(|e| {
        Error::new(ErrorCode::InvalidInput, format!("not a valid URL: {url} ({})", describe(&e)))
            .with("field", "manifestUrl")
    })
}

/// Start a GET request; the promise is awaited by [`bytes`]. Starting all requests before
/// awaiting any lets the browser download the bundle files in parallel.
pub fn start(url: &str) -> Result<Promise> {
    match scope() {
        Some(Scope::Window(w)) => Ok(w.fetch_with_str(url)),
        Some(Scope::Worker(w)) => Ok(w.fetch_with_str(url)),
        None => Err(Error::new(ErrorCode::Network, "no fetch in this JavaScript environment")
            .with("url", url)),
    }
}

/// The body of a started request; non-2xx answers and network failures are typed errors.
pub async fn bytes(url: &str, request: Promise) -> Result<Vec<u8>> {
    Ok(body(url, request, false).await?.0)
}

/// [`bytes`] and the body's sha256 (lowercase hex) from the browser's `crypto.subtle`, native
/// code: hashing a 0.5 MB weights file with wasm compiled a moment ago (V8's baseline tier)
/// took 20-40 ms of a cold start. `None` where there is no `crypto.subtle` (a page served
/// over plain HTTP from another host than localhost): the caller hashes the bytes itself.
pub async fn bytes_and_digest(url: &str, request: Promise) -> Result<(Vec<u8>, Option<String>)> {
    body(url, request, true).await
}

async fn body(url: &str, request: Promise, digest: bool) -> Result<(Vec<u8>, Option<String>)> {
    let network = |e: wasm_bindgen::JsValue| {
        Error::new(ErrorCode::Network, format!("{url}: {}", describe(&e))).with("url", url)
    };
    let response: Response =
        JsFuture::from(request).await.map_err(network)?.dyn_into().map_err(network)?;
    if !response.ok() {
        let status = response.status();
        return Err(Error::new(
            ErrorCode::HttpStatus,
            format!("{url}: HTTP {status} {}", response.status_text()),
        )
        .with("url", url)
        .with("status", status));
    }
    let body = JsFuture::from(response.array_buffer().map_err(network)?).await.map_err(network)?;
    // Started before the copy into wasm memory; the browser hashes its own copy meanwhile.
    let pending = if digest { subtle_sha256(&body) } else { None };
    let bytes = Uint8Array::new(&body).to_vec();
    let digest = match pending {
        Some(p) => JsFuture::from(p).await.ok().map(|d| hex(&Uint8Array::new(&d).to_vec())),
        None => None,
    };
    Ok((bytes, digest))
}

/// `crypto.subtle.digest("SHA-256", buffer)`, or `None` where the scope has no `crypto.subtle`
/// (insecure contexts) or it refuses.
fn subtle_sha256(buffer: &wasm_bindgen::JsValue) -> Option<Promise> {
    let crypto = js_sys::Reflect::get(&js_sys::global(), &"crypto".into()).ok()?;
    let subtle = js_sys::Reflect::get(&crypto, &"subtle".into()).ok()?;
    if subtle.is_undefined() || subtle.is_null() {
        return None;
    }
    let digest: js_sys::Function =
        js_sys::Reflect::get(&subtle, &"digest".into()).ok()?.dyn_into().ok()?;
    digest.call2(&subtle, &"SHA-256".into(), buffer).ok()?.dyn_into().ok()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The downloads a page started with `prefetchBundle` (web/sessionrank-prefetch.js) before
/// the module was ready, handed to `load` as `options.prefetched`: the manifest's response and
/// a promise of each listed file's response. `load` reads them exactly as its own requests.
pub struct Prefetched {
    /// The manifest's absolute URL.
    pub url: String,
    manifest: Promise,
    files: Promise,
}

impl Prefetched {
    /// `options.prefetched`, when given; a value of another shape is an `invalid_input`.
    pub fn parse(options: &JsValue) -> Result<Option<Self>> {
        if options.is_undefined() || options.is_null() {
            return Ok(None);
        }
        let field = "options.prefetched";
        let v = Reflect::get(options, &"prefetched".into())
            .map_err(|e| Error::input(field, describe(&e)))?;
        if v.is_undefined() || v.is_null() {
            return Ok(None);
        }
        let shape = || Error::input(field, "must be what prefetchBundle(url) returned");
        let get = |key: &str| Reflect::get(&v, &key.into()).map_err(|_| shape());
        let url = get("url")?.as_string().ok_or_else(shape)?;
        let manifest = get("manifest")?.dyn_into::<Promise>().map_err(|_| shape())?;
        let files = get("files")?.dyn_into::<Promise>().map_err(|_| shape())?;
        Ok(Some(Self { url, manifest, files }))
    }

    /// The manifest's request, for [`bytes`].
    pub fn manifest(&self) -> Promise {
        self.manifest.clone()
    }

    /// The requests the prefetch started, by file name (none when its file list failed: the
    /// caller then starts its own).
    pub async fn started(&self) -> BTreeMap<String, Promise> {
        let Ok(files) = JsFuture::from(self.files.clone()).await else {
            return BTreeMap::new();
        };
        let Ok(entries) = js_sys::Object::try_from(&files).map(js_sys::Object::entries).ok_or(())
        else {
            return BTreeMap::new();
        };
        entries
            .iter()
            .filter_map(|pair| {
                let pair: js_sys::Array = pair.dyn_into().ok()?;
                Some((pair.get(0).as_string()?, pair.get(1).dyn_into::<Promise>().ok()?))
            })
            .collect()
    }
}
