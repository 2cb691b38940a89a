//! Response headers for a service that faces browsers: CORS for the public routes (only the
//! configured origins), `X-Content-Type-Options: nosniff` on every answer, and a Content
//! Security Policy on the pages served from the web directory.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The pages' policy: scripts, workers, styles and fetches from this origin only;
/// `wasm-unsafe-eval` lets the browser package compile its WebAssembly; inline styles are
/// allowed (the landing page has one; styles cannot run code), inline scripts are not; no
/// plugins, no framing (clickjacking), no `<base>` or form targets elsewhere.
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; \
     connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; \
     frame-ancestors 'none'";

pub fn nosniff() -> HeaderValue {
    HeaderValue::from_static("nosniff")
}

pub fn csp_header() -> (HeaderName, HeaderValue) {
    (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP))
}

/// CORS for the public read routes: the listed origins may `GET` (and `POST` the vectors
/// query, a read with a body), send `Content-Type` and `If-None-Match`, and read `ETag`. No
/// credentials: the public routes need none. `None` without origins: same-origin only.
pub fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::HEAD, Method::POST])
            .allow_headers([header::CONTENT_TYPE, header::IF_NONE_MATCH])
            .expose_headers([header::ETAG])
            .max_age(Duration::from_secs(3600)),
    )
}
