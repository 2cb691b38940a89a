//! The demo storefront (`web/demo`) and the plain-JS example (`web/storefront`) in headless
//! Chromium, against the real server on 127.0.0.1:0 with the committed bundle live and the
//! bundled real sample (Diginetica slice) as catalog and event history:
//!
//! * click three products → the visible order equals the native engine's order for the same
//!   session and candidates; no console errors; a screenshot is saved. The page runs the
//!   *browser* bundle over the vectors that came with the candidate page, the native engine
//!   the *full* bundle computing every vector itself: equal orders mean the split loses
//!   nothing. The page downloaded no file of the full bundle (no item table, no tokenizer);
//! * a tampered weights file → the page still shows the products in upstream order and says
//!   personalisation is off;
//! * the merchandising panel (diversity, hiding out-of-stock products, the weight of
//!   personalisation, a move limit, a pin) re-ranks live, and the visible order equals the
//!   native engine's under the same rules; each card says why (`docs/demo-controls.png`).
//!
//! Needs the browser package (`scripts/build-wasm` → `web/pkg`) and Debian's `chromium` +
//! `chromium-driver`. `scripts/test` provides both and sets `SESSIONRANK_BROWSER_TESTS=1`, which
//! turns a missing piece into a failure, as `CI=true` does; otherwise the tests skip (with a
//! note) when a piece is missing. `SESSIONRANK_UPDATE_SCREENSHOT=1` also writes the screenshots
//! to `docs/` (`demo-fixture.png`: this Diginetica site; the README's `docs/demo.png` is the real
//! `scripts/demo` on the Amazon Beauty sample, taken by `scripts/demo-screenshot`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use burn::tensor::Device;
use serde_json::{Value, json};
use sessionrank_core::{Candidate, ItemContent, ModelBundle, Reranker, Rules, SessionEvent};
use sessionrank_data::EventKind;
use sessionrank_data::import::import_named;
use sessionrank_server::client::Client;
use sessionrank_server::serve::serve;
use tokio::net::TcpListener;

use crate::common::*;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// `true` when the browser tests can run; panics when they must (SESSIONRANK_BROWSER_TESTS=1
/// or CI=true) but cannot.
pub(crate) fn browser_available() -> bool {
    let required = std::env::var("SESSIONRANK_BROWSER_TESTS").is_ok_and(|v| v == "1");
    let pkg = repo().join("web/pkg/sessionrank_bg.wasm");
    let missing: Vec<String> = [pkg.as_path(), Path::new(CHROMEDRIVER)]
        .iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        return true;
    }
    skip_unless_required(
        &format!(
            "missing {missing:?} (scripts/build-wasm builds the package; \
             apt install chromium chromium-driver; scripts/test does both)"
        ),
        required,
    );
    false
}

// --- a minimal WebDriver client (W3C, over the project's loopback HTTP client) ----------------

pub(crate) struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
}

impl Browser {
    pub(crate) async fn start() -> Self {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr").port()
        };
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let start = Instant::now();
        loop {
            if let Ok(mut c) = Client::connect(addr).await
                && c.get("/status").await.is_ok_and(|r| r.status == 200)
            {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "chromedriver did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps: Value = serde_json::from_str(
            &std::fs::read_to_string(repo().join("crates/wasm/webdriver.json"))
                .expect("webdriver.json"),
        )
        .expect("webdriver.json parses");
        let mut always = json!({"browserName": "chrome", "goog:loggingPrefs": {"browser": "ALL"}});
        for (k, v) in caps.as_object().expect("object") {
            always[k] = v.clone();
        }
        let mut b = Self { driver, addr, session: String::new() };
        let v = b.call("POST", "/session", json!({"capabilities": {"alwaysMatch": always}})).await;
        b.session = v["sessionId"].as_str().expect("session id").to_string();
        // A laptop-sized window: the layout (and the screenshot) of a real visit.
        b.cmd("POST", "/window/rect", json!({"width": 1280, "height": 1000})).await;
        b
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        // A fresh connection per command: chromedriver may close idle keep-alive connections.
        let mut c = Client::connect(self.addr).await.expect("connect to chromedriver");
        let r = if method == "GET" {
            c.get(path).await
        } else {
            c.json(method, path, &body, None).await
        }
        .expect("webdriver call");
        let v: Value = r.json().expect("webdriver answers JSON");
        assert_eq!(r.status, 200, "{method} {path}: {v}");
        v["value"].clone()
    }

    async fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body).await
    }

    async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", json!({"url": url})).await;
    }

    pub(crate) async fn js(&self, script: &str) -> Value {
        self.cmd("POST", "/execute/sync", json!({"script": script, "args": []})).await
    }

    /// Poll `expr` (a JS expression) until it is truthy; returns its value.
    pub(crate) async fn wait_for(&self, expr: &str, what: &str) -> Value {
        let start = Instant::now();
        loop {
            let v = self.js(&format!("return ({expr}) || null")).await;
            if !v.is_null() {
                return v;
            }
            let status =
                self.js("return document.getElementById('status')?.textContent ?? ''").await;
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "timed out waiting for {what}; status: {status}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A real click (pointer events through the browser), not `el.click()`.
    pub(crate) async fn click(&self, css: &str) {
        let el = self.cmd("POST", "/element", json!({"using": "css selector", "value": css})).await;
        let id = el[ELEMENT_KEY].as_str().expect("element id").to_string();
        self.cmd("POST", &format!("/element/{id}/click"), json!({})).await;
    }

    /// Open `url` and wait until the page has settled (`body[data-state]` ready or degraded);
    /// returns that state.
    pub(crate) async fn open_page(&self, url: &str) -> String {
        self.goto(url).await;
        let state = self
            .wait_for(
                "document.body.dataset.state !== 'loading' && document.body.dataset.state",
                url,
            )
            .await;
        state.as_str().expect("state").to_string()
    }

    pub(crate) async fn status(&self) -> String {
        self.js("return document.getElementById('status').textContent")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub(crate) async fn renders(&self) -> u64 {
        self.js("return Number(document.body.dataset.renders ?? 0)").await.as_u64().unwrap_or(0)
    }

    /// Item ids of `selector`'s `li[data-item-id]` children, in visible order.
    pub(crate) async fn order(&self, list: &str) -> Vec<String> {
        let v = self.js(&format!("return [...document.querySelectorAll('{list} > li[data-item-id]')].map(li => li.dataset.itemId)")).await;
        v.as_array().expect("array").iter().map(|x| x.as_str().expect("id").to_string()).collect()
    }

    /// Console messages at level SEVERE since the last call.
    pub(crate) async fn console_errors(&self) -> Vec<String> {
        let v = self.cmd("POST", "/se/log", json!({"type": "browser"})).await;
        v.as_array()
            .expect("log entries")
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].to_string())
            .collect()
    }

    async fn screenshot(&self) -> Vec<u8> {
        self.js("window.scrollTo(0, 0); return null").await;
        let v = self.cmd("GET", "/screenshot", json!(null)).await;
        base64_decode(v.as_str().expect("base64 PNG"))
    }
}

/// Ends the WebDriver session before stopping chromedriver — also when a test panics. Killing
/// chromedriver alone leaves its Chromium running (re-parented to init): every run of the
/// suite used to leave browsers behind that kept memory and CPU until the machine restarted.
impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            delete_session_blocking(self.addr, &self.session);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `DELETE /session/{id}` over a plain blocking socket (no runtime in `drop`), waiting for the
/// answer, which chromedriver sends once Chromium has quit; bounded by timeouts so a hung
/// driver cannot hang the test.
fn delete_session_blocking(addr: SocketAddr, session: &str) {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(15)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for v in s.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

// --- the site under test ---------------------------------------------------------------------

pub(crate) struct Site {
    pub(crate) url: String,
    pub(crate) bundle: ModelBundle,
    /// The web root the server serves (pages, package): a test may add files to it.
    pub(crate) web: PathBuf,
    /// The running server's state (a test may publish another model version).
    pub(crate) state: sessionrank_server::state::AppState,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Site {
    /// The server with the committed bundle live, the sample's catalog and events stored, and a
    /// web root holding the pages, the package and a copy of its browser bundle with tampered
    /// weights at `/broken-model/manifest.json`.
    pub(crate) async fn start() -> Self {
        let web = tempfile::tempdir().expect("tempdir");
        for d in ["demo", "storefront", "pkg"] {
            copy_dir(&repo().join("web").join(d), &web.path().join(d));
        }
        let bundle = ModelBundle::read_dir(&repo().join("tests/fixtures/bundle-slice"))
            .expect("the committed bundle reads");
        let browser = bundle.browser().expect("the committed bundle's browser bundle");
        let mut broken = browser.clone();
        let weights = broken.files.get_mut("weights.bpk").expect("weights file");
        weights.truncate(weights.len() / 2);
        std::fs::create_dir_all(web.path().join("broken-model")).expect("mkdir");
        std::fs::write(
            web.path().join("broken-model/manifest.json"),
            browser.manifest_json().expect("manifest"),
        )
        .expect("write");
        for (name, bytes) in &broken.files {
            std::fs::write(web.path().join("broken-model").join(name), bytes).expect("write");
        }

        let data_dir = tempfile::tempdir().expect("tempdir");
        let mut config = test_config(data_dir.path());
        config.web_dir = Some(web.path().to_path_buf());
        let state = open(config).await;
        state.models.publish(bundle.clone(), true).await.expect("publish the committed bundle");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let kept = state.clone();
        let server = tokio::spawn(serve(listener, state, async {
            let _ = stopped.await;
        }));

        // The bundled real sample: catalog, then its sessions (popularity = upstream order).
        let data = import_named("diginetica-slice", &repo().join("tests/data"))
            .expect("the bundled sample imports")
            .dataset;
        let mut c = Client::connect(addr).await.expect("connect");
        put_catalog(&mut c, &data.catalog).await;
        for chunk in training_events(&data, 3000).chunks(1000) {
            let r = c
                .json("POST", "/v1/events", &json!({"events": chunk}), Some(INGEST_KEY))
                .await
                .expect("POST events");
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        }
        Self {
            url: format!("http://{addr}"),
            web: web.path().to_path_buf(),
            state: kept,
            bundle,
            _dirs: (web, data_dir),
            stop: Some(stop),
            server: Some(server),
        }
    }

    pub(crate) async fn candidates(&self, limit: usize) -> Vec<Value> {
        let addr = self.url.trim_start_matches("http://").parse().expect("addr");
        let r = Client::connect(addr)
            .await
            .expect("connect")
            .get(&format!("/v1/candidates?limit={limit}"))
            .await
            .expect("candidates");
        r.json().expect("json")["items"].as_array().expect("items").clone()
    }

    /// The native engine's order for `events` (as the page stored them) over `candidates`, with
    /// the full bundle: every vector computed here, none taken from the page.
    fn native_order(&self, events: &Value, candidates: &[Value]) -> Vec<String> {
        self.native_order_with(events, candidates, &Rules::default(), &[])
    }

    /// [`Site::native_order`] under the shop's `rules`, with the `unavailable` ids marked so.
    fn native_order_with(
        &self,
        events: &Value,
        candidates: &[Value],
        rules: &Rules,
        unavailable: &[String],
    ) -> Vec<String> {
        let engine = Reranker::from_bundle(&self.bundle, &Device::flex()).expect("engine");
        let session: Vec<SessionEvent> = events
            .as_array()
            .expect("events")
            .iter()
            .map(|e| SessionEvent {
                item_id: e["itemId"].as_str().expect("itemId").into(),
                kind: EventKind::parse(e["kind"].as_str().expect("kind")).expect("known kind"),
                timestamp: e["timestamp"].as_f64().map(|ms| (ms / 1000.0).floor() as i64),
                content: None,
                vector: None,
            })
            .collect();
        let candidates: Vec<Candidate> = candidates
            .iter()
            .map(|c| Candidate {
                item_id: c["id"].as_str().expect("id").into(),
                content: Some(ItemContent {
                    text: c["text"].as_str().unwrap_or_default().into(),
                    category: c["category"].as_str().map(String::from),
                    price_level: c["price_level"].as_u64().map(|p| p as u8),
                }),
                vector: None,
                available: !unavailable.iter().any(|u| c["id"].as_str() == Some(u.as_str())),
            })
            .collect();
        let ranking = engine.rerank_with(&session, &candidates, rules).expect("native rerank");
        assert!(ranking.personalised, "{:?}", ranking.reason);
        ranking.items.into_iter().map(|i| i.item_id).collect()
    }

    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server shuts down cleanly");
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Click the product at `position` of the visible list and wait for the re-render; returns
/// its id.
pub(crate) async fn click_at(b: &Browser, list: &str, position: usize, button: &str) -> String {
    let before = b.renders().await;
    let order = b.order(list).await;
    let id = order[position].clone();
    b.click(&format!("{list} > li[data-item-id=\"{id}\"] {button}")).await;
    b.wait_for(
        &format!("Number(document.body.dataset.renders) > {before}"),
        "the re-render after a click",
    )
    .await;
    id
}

/// The page loaded a browser bundle and no file of a full one. Model files are fetched by the
/// worker, out of the page's resource timing, so the server's per-route counters tell.
async fn assert_browser_bundle_only(site: &Site) {
    let addr = site.url.trim_start_matches("http://").parse().expect("addr");
    let r = Client::connect(addr).await.expect("connect").get("/metrics").await.expect("metrics");
    let text = String::from_utf8_lossy(&r.body).into_owned();
    let served = |route: &str| {
        text.lines().any(|l| {
            l.starts_with("sessionrank_http_requests_total{")
                && l.contains(&format!("route=\"{route}\",status=\"200\""))
        })
    };
    assert!(
        served("/v1/models/{version}/browser/{file}"),
        "the browser bundle was downloaded:\n{text}"
    );
    assert!(
        !text.contains("route=\"/v1/models/{version}/{file}\""),
        "no full-bundle file was downloaded:\n{text}"
    );
}

fn save_screenshot(png: &[u8], name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(name);
    std::fs::write(&path, png).expect("write screenshot");
    if std::env::var("SESSIONRANK_UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
        std::fs::write(repo().join("docs").join(name), png).expect("write docs screenshot");
    }
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_reranks_like_the_native_engine_and_degrades_to_upstream_order() {
    if !browser_available() {
        return;
    }
    let site = Site::start().await;
    let b = Browser::start().await;
    let candidates = site.candidates(60).await;
    let upstream: Vec<String> =
        candidates.iter().map(|c| c["id"].as_str().expect("id").to_string()).collect();

    assert_eq!(
        b.open_page(&format!("{}/demo/", site.url)).await,
        "ready",
        "status: {}",
        b.status().await
    );
    assert_eq!(b.order("#grid").await, upstream, "before any click: upstream order");
    assert_eq!(
        b.js("return document.getElementById('model-version').textContent").await,
        site.bundle.manifest.model_version.as_str()
    );

    // Three products, picked from the list as it stands at each click; the last one to the cart.
    let first = click_at(&b, "#grid", 4, "button[data-action=open]").await;
    let second = click_at(&b, "#grid", 9, "button[data-action=open]").await;
    let third = click_at(&b, "#grid", 2, "button[data-action=cart]").await;
    assert_eq!(b.js("return document.getElementById('grid').dataset.order").await, "personalised");
    let events = b.js(
        "return [...document.querySelectorAll('#session-events > li')].map(li => ({itemId: li.dataset.itemId, kind: li.dataset.kind, timestamp: Number(li.dataset.timestamp)}))",
    )
    .await;
    let ids: Vec<&str> = events
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["itemId"].as_str().expect("id"))
        .collect();
    assert_eq!(
        ids,
        [first.as_str(), second.as_str(), third.as_str()],
        "the session panel lists the three actions"
    );
    assert_eq!(events[2]["kind"], "add_to_cart");

    let visible = b.order("#grid").await;
    let native = site.native_order(&events, &candidates);
    assert_eq!(visible, native, "the page shows the native engine's order for the same session");
    assert_browser_bundle_only(&site).await;
    assert_ne!(visible, upstream, "three clicks changed the order");
    let because = b
        .js("return document.querySelectorAll('#grid .because').length")
        .await
        .as_u64()
        .unwrap_or(0);
    assert!(because > 0, "re-ranked items say why");
    let latency = b.js("return document.getElementById('latency').textContent").await;
    assert!(latency.as_str().is_some_and(|t| t.ends_with(" ms)")), "latency shown: {latency}");
    assert_eq!(
        b.js("return document.getElementById('backend').textContent").await,
        "CPU (WebAssembly)"
    );
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    let shot = save_screenshot(&b.screenshot().await, "demo-fixture.png");
    eprintln!("screenshot: {}", shot.display());

    // Personalisation off → upstream order; on again → the personalised order.
    let before = b.renders().await;
    b.click("#personalise").await;
    b.wait_for(&format!("Number(document.body.dataset.renders) > {before}"), "the toggle").await;
    assert_eq!(b.order("#grid").await, upstream);
    let before = b.renders().await;
    b.click("#personalise").await;
    b.wait_for(&format!("Number(document.body.dataset.renders) > {before}"), "the toggle").await;
    assert_eq!(b.order("#grid").await, native);

    // The session survives a reload (sessionStorage) and the page re-ranks it at once.
    b.goto(&format!("{}/demo/", site.url)).await;
    b.wait_for(
        "document.getElementById('grid').dataset.order === 'personalised'",
        "the restored session's ranking",
    )
    .await;
    assert_eq!(b.order("#grid").await, native, "after a reload");

    // Tampered weights: upstream order, and the page says personalisation is off.
    b.js("sessionStorage.clear(); return null").await;
    assert_eq!(
        b.open_page(&format!("{}/demo/?model=/broken-model/manifest.json", site.url)).await,
        "degraded"
    );
    let status = b.status().await;
    assert!(
        status.contains("Personalisation is off") && status.contains("checksum_mismatch"),
        "{status}"
    );
    assert_eq!(b.order("#grid").await, upstream);
    // Clicking still works and keeps the order.
    b.click(&format!("#grid > li[data-item-id=\"{}\"] button[data-action=open]", upstream[3]))
        .await;
    assert_eq!(b.order("#grid").await, upstream);
    save_screenshot(&b.screenshot().await, "demo-degraded.png");

    b.cmd("DELETE", "", json!({})).await;
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storefront_example_reranks_like_the_native_engine_and_degrades_to_upstream_order() {
    if !browser_available() {
        return;
    }
    let site = Site::start().await;
    let b = Browser::start().await;
    let candidates = site.candidates(40).await;
    let upstream: Vec<String> =
        candidates.iter().map(|c| c["id"].as_str().expect("id").to_string()).collect();

    assert_eq!(
        b.open_page(&format!("{}/storefront/", site.url)).await,
        "ready",
        "status: {}",
        b.status().await
    );
    assert_eq!(b.order("#products").await, upstream);
    for position in [4, 9, 2] {
        click_at(&b, "#products", position, "button").await;
    }
    let key = format!("sessionrank:session:{}:worker", site.bundle.manifest.model_version);
    let events = b.js(&format!("return JSON.parse(sessionStorage.getItem('{key}'))")).await;
    assert_eq!(events.as_array().map(Vec::len), Some(3), "{events}");
    assert!(
        events.as_array().expect("events").iter().all(|e| e["vector"]
            .as_array()
            .is_some_and(|v| v.len() == site.bundle.manifest.config.d_model)),
        "stored events keep their vectors: {events}"
    );
    assert_eq!(b.order("#products").await, site.native_order(&events, &candidates));
    assert_browser_bundle_only(&site).await;
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    save_screenshot(&b.screenshot().await, "storefront.png");

    b.js("sessionStorage.clear(); return null").await;
    assert_eq!(
        b.open_page(&format!("{}/storefront/?model=/broken-model/manifest.json", site.url)).await,
        "degraded"
    );
    let status = b.status().await;
    assert!(status.contains("Personalisation is off"), "{status}");
    assert_eq!(b.order("#products").await, upstream);

    b.cmd("DELETE", "", json!({})).await;
    site.stop().await;
}

/// Set an `<input>` or `<select>` of the demo's merchandising panel as a shopper's hand would
/// (its `input` and `change` events) and wait for the re-render it causes.
async fn set_control(b: &Browser, id: &str, value: &str) {
    let before = b.renders().await;
    b.js(&format!(
        "const e = document.getElementById('{id}'); e.value = '{value}'; \
         e.dispatchEvent(new Event('input')); e.dispatchEvent(new Event('change')); return null"
    ))
    .await;
    b.wait_for(&format!("Number(document.body.dataset.renders) > {before}"), id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_merchandiser_controls_act_live_like_the_native_engine() {
    if !browser_available() {
        return;
    }
    let site = Site::start().await;
    let b = Browser::start().await;
    let candidates = site.candidates(60).await;
    assert_eq!(b.open_page(&format!("{}/demo/", site.url)).await, "ready");
    let unavailable: Vec<String> = serde_json::from_str(
        b.js("return document.getElementById('grid').dataset.unavailable")
            .await
            .as_str()
            .expect("ids"),
    )
    .expect("out-of-stock ids");
    assert!(!unavailable.is_empty(), "the demo marks some products out of stock");

    // Out-of-stock products are shown, marked, until the box is ticked: then they are hidden,
    // even before any click (the rules apply to the shop's order too).
    assert_eq!(
        b.js("return document.querySelectorAll('#grid .stock').length").await,
        json!(unavailable.len())
    );
    let before = b.renders().await;
    b.click("#hide-out-of-stock").await;
    b.wait_for(&format!("Number(document.body.dataset.renders) > {before}"), "hide out of stock")
        .await;
    let shown = b.order("#grid").await;
    assert_eq!(shown.len(), candidates.len() - unavailable.len());
    assert!(shown.iter().all(|id| !unavailable.contains(id)), "hidden products are gone");
    let note = b.js("return document.getElementById('hidden-note').textContent").await;
    assert!(note.as_str().is_some_and(|t| t.contains("hidden: out of stock")), "{note}");

    // A session, then diversity, less personalisation, a move limit and a pin.
    click_at(&b, "#grid", 4, "button[data-action=open]").await;
    click_at(&b, "#grid", 9, "button[data-action=open]").await;
    let plain = b.order("#grid").await;
    set_control(&b, "diversity", "0.3").await;
    let diverse = b.order("#grid").await;
    assert_ne!(diverse, plain, "the diversity slider re-orders at once");
    set_control(&b, "blend", "0.8").await;
    set_control(&b, "max-move", "10").await;
    // Below the sticky header a scrolled-to button would be covered: centre it first.
    b.js("document.querySelectorAll('#grid > li')[12].scrollIntoView({block: 'center'}); return null")
        .await;
    let pinned = click_at(&b, "#grid", 12, "button[data-action=pin]").await;
    let visible = b.order("#grid").await;
    assert_eq!(visible[0], pinned, "the pinned product comes first");

    let rules: Rules = serde_json::from_str(
        b.js("return document.getElementById('grid').dataset.rules").await.as_str().expect("rules"),
    )
    .expect("the page's rules parse as the engine's");
    assert_eq!(rules.diversity, 0.3);
    assert_eq!(rules.max_displacement, Some(10));
    assert_eq!(rules.pins.get(&pinned), Some(&0));
    let events = b.js(
        "return [...document.querySelectorAll('#session-events > li')].map(li => ({itemId: li.dataset.itemId, kind: li.dataset.kind, timestamp: Number(li.dataset.timestamp)}))",
    )
    .await;
    let native = site.native_order_with(&events, &candidates, &rules, &unavailable);
    assert_eq!(visible, native, "the page shows the native engine's order under the same rules");

    // Every card says why: the pin, diversity or the move limit, the session.
    let notes = b
        .js("return [...document.querySelectorAll('#grid .rules-note')].map(n => n.textContent)")
        .await;
    let notes: Vec<&str> =
        notes.as_array().expect("notes").iter().filter_map(Value::as_str).collect();
    assert!(notes.iter().any(|n| n.contains("Pinned to #1 by the shop")), "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("to vary the list")), "{notes:?}");
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    save_screenshot(&b.screenshot().await, "demo-controls.png");

    // Reset rules: the model's order for the session again.
    let before = b.renders().await;
    b.click("#reset-rules").await;
    b.wait_for(&format!("Number(document.body.dataset.renders) > {before}"), "reset rules").await;
    assert_eq!(b.order("#grid").await, site.native_order(&events, &candidates));

    b.cmd("DELETE", "", json!({})).await;
    site.stop().await;
}
