//! Fetching bundle files with the page's (or the worker's) `fetch`.

use js_sys::{Promise, Uint8Array};
use wasm_bindgen::JsCast;
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
    Ok(Uint8Array::new(&body).to_vec())
}
