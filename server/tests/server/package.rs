//! The npm package as a shop uses it, in headless Chromium against the real server (the
//! `browser` module's site and WebDriver client):
//!
//! * the Vite example (`web/example-vite`) built from the packed tarball by
//!   `scripts/test-package` (`target/npm/example-dist`, or `SESSIONRANK_EXAMPLE_DIST`): the
//!   model loads from the server, clicks re-rank, no console errors, and the worker and the
//!   .wasm come from the bundle's output (the site's unbundled `pkg/` is removed first);
//! * the worker client's options and failure paths on a probe page: `storage: "none"` leaves
//!   sessionStorage empty; `consent: false` keeps and personalises nothing until
//!   `grantConsent()`, then from that click on; Save-Data never asks for the WebGPU artefact
//!   (the worker's own resource list); a hung worker → `timeout`, and the next call works on
//!   a fresh worker with the session; `terminate()` settles a pending call; a corrupt stored
//!   session and a stored vector of the wrong length are discarded with a reason; a malformed
//!   vector a page once listed never breaks a later re-rank.
//!
//! The example test needs the built app: `scripts/test` runs `scripts/test-package` first.
//! With `SESSIONRANK_BROWSER_TESTS=1` or `CI=true` a missing piece fails the test instead of
//! skipping it.

use std::path::PathBuf;

use serde_json::Value;

use crate::browser::{Browser, Site, browser_available, click_at};

/// Whether a missing piece must fail the test rather than skip it.
fn required() -> bool {
    ["SESSIONRANK_BROWSER_TESTS", "CI"]
        .iter()
        .any(|k| std::env::var(k).is_ok_and(|v| v == "1" || v == "true"))
}

/// Chromium and the package are there; under CI a missing one fails the test.
fn can_run() -> bool {
    let ok = browser_available();
    assert!(ok || !required(), "CI=true: the package's browser tests cannot run");
    ok
}

/// The built example, or `None` (with a note) when it is missing and may be.
fn example_dist() -> Option<PathBuf> {
    let dist = std::env::var_os("SESSIONRANK_EXAMPLE_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::common::repo().join("target/npm/example-dist"));
    if dist.join("index.html").is_file() {
        return Some(dist);
    }
    assert!(!required(), "{} is missing: run scripts/test-package", dist.display());
    eprintln!(
        "skipping the Vite example test: {} is missing (scripts/test-package)",
        dist.display()
    );
    None
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vite_example_from_the_tarball_reranks_against_the_real_server() {
    if !can_run() {
        return;
    }
    let Some(dist) = example_dist() else { return };
    let site = Site::start().await;
    // Only the bundler's output: no unbundled package for the page to fall back on.
    std::fs::remove_dir_all(site.web.join("pkg")).expect("remove pkg");
    copy_dir(&dist, &site.web);
    let b = Browser::start().await;
    let upstream: Vec<String> = site
        .candidates(40)
        .await
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_string())
        .collect();

    let state = b.open_page(&format!("{}/", site.url)).await;
    assert_eq!(state, "ready", "status: {}", b.status().await);
    assert_eq!(b.order("#products").await, upstream, "before any click: upstream order");
    for position in [3, 8, 1] {
        click_at(&b, "#products", position, "button").await;
    }
    let status = b.status().await;
    assert!(status.starts_with("Re-ranked in"), "clicks re-rank: {status}");
    assert_ne!(b.order("#products").await, upstream, "three clicks changed the order");
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");

    // The worker came from the bundle's assets (the page's resource list names it).
    let worker = b
        .js("return performance.getEntriesByType('resource').map(e => e.name).filter(n => /\\/assets\\/sessionrank-worker-[^/]*\\.js$/.test(n))")
        .await;
    assert_eq!(worker.as_array().map(Vec::len), Some(1), "the bundled worker was loaded");
    site.stop().await;
}

/// The probe page: `window.probes[name]()` resolves to a JSON value kept in `window.results`.
const PROBE_JS: &str = r#"
import { RerankerClient, fetchVectors } from "/pkg/sessionrank-client.js";

const page = await (await fetch("/v1/candidates?limit=20")).json();
const manifest = `/v1/models/${encodeURIComponent(page.model_version)}/browser/manifest.json`;
const candidates = page.items.map((p) => ({ itemId: p.id, vector: p.vector }));
const click = (i) => ({ itemId: page.items[i].id, kind: "click", vector: page.items[i].vector });
const code = async (p) => {
  try { await p; return "resolved"; } catch (e) { return e?.code ?? String(e); }
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Every worker the page starts, so a probe can ask one for its resource list.
const workers = [];
const RealWorker = Worker;
// And every message the page sends them (the elision probe reads what a re-rank carried).
const posted = [];
window.Worker = class extends RealWorker {
  constructor(...args) { super(...args); workers.push(this); }
  postMessage(message, transfer) { posted.push(message); return super.postMessage(message, transfer); }
};
/** A rerank message's shape: how many candidates carried a vector, how many were `known`. */
const lastRerank = () => {
  const m = posted.filter((p) => p?.op === "rerank").pop();
  return { vectors: m.args.candidates.filter((c) => c?.vector != null).length,
    known: m.args.known?.length ?? 0 };
};
const resources = (worker) => new Promise((resolve) => {
  worker.addEventListener("message", ({ data }) => { if (data?.id === -1) resolve(data.result); });
  worker.postMessage({ id: -1, op: "resources" });
});

window.probes = {
  async storage() {
    sessionStorage.clear();
    const none = await RerankerClient.load(manifest, { storage: "none" });
    await none.observe(click(1));
    const ranked = await none.rerank(candidates);
    const out = { noneStored: sessionStorage.length, nonePersonalised: ranked.personalised,
      noneSession: none.session().length };
    none.terminate();
    const stored = await RerankerClient.load(manifest);
    await stored.observe(click(1));
    out.sessionStored = sessionStorage.length;
    stored.terminate();
    sessionStorage.clear();
    return out;
  },
  async consent() {
    sessionStorage.clear();
    const r = await RerankerClient.load(manifest, { consent: false });
    await r.observe(click(1));
    const before = await r.rerank(candidates);
    const storedBefore = sessionStorage.length;
    r.grantConsent();
    await r.observe(click(2));
    const after = await r.rerank(candidates);
    const out = { beforePersonalised: before.personalised, storedBefore,
      afterPersonalised: after.personalised, session: r.session().map((e) => e.itemId),
      second: page.items[2].id, storedAfter: sessionStorage.length };
    r.terminate();
    sessionStorage.clear();
    return out;
  },
  async saveData() {
    const proto = Object.getPrototypeOf(navigator);
    Object.defineProperty(proto, "connection", { configurable: true, get: () => ({ saveData: true }) });
    let status = null;
    const r = await RerankerClient.load(manifest, {
      storage: "memory", workerUrl: "/probe/spy-worker.js", onStatus: (s) => { status = s; } });
    await r.observe(click(1));
    await r.rerank(candidates);
    for (let i = 0; i < 100 && !status; i++) await sleep(50);
    await r.rerank(candidates);
    const names = await resources(workers[workers.length - 1]);
    r.terminate();
    Object.defineProperty(proto, "connection", { configurable: true, get: () => undefined });
    return { status, requests: names.length,
      webgpuRequests: names.filter((n) => n.includes("webgpu")).length };
  },
  async elision() {
    const r = await RerankerClient.load(manifest, { storage: "memory", workerUrl: "/probe/spy-worker.js" });
    await r.observe(click(1));
    const first = await r.rerank(candidates);
    const firstMessage = lastRerank();
    const again = await r.rerank(candidates.map((c) => ({ ...c, vector: c.vector.slice() })));
    const againMessage = lastRerank();
    const sameAgain = JSON.stringify(first.items) === JSON.stringify(again.items);
    // One vector changed in place: that one is sent again and scored with its new numbers.
    const changed = candidates.map((c) => ({ ...c, vector: c.vector.slice() }));
    changed[3].vector[0] += 0.5;
    changed[3].vector[1] -= 0.5;
    const moved = await r.rerank(changed);
    const movedMessage = lastRerank();
    const fresh = await RerankerClient.load(manifest, { storage: "memory" });
    await fresh.observe(click(1));
    const want = await fresh.rerank(changed);
    fresh.terminate();
    const scoreOf = (x, id) => x.items.find((i) => i.itemId === id).score;
    const movedDiff = Math.max(...want.items.map((i) => Math.abs(scoreOf(moved, i.itemId) - i.score)));
    // A worker asked for a vector it never got answers vectors_missing (the client then
    // sends them all).
    const worker = workers[workers.length - 2];
    const missing = await new Promise((resolve) => {
      worker.addEventListener("message", ({ data }) => { if (data?.id === 999) resolve(data.error?.code ?? "none"); });
      worker.postMessage({ id: 999, op: "rerank", args: { candidates: [{ itemId: "never-sent" }], known: [0] } });
    });
    r.terminate();
    return { firstMessage, againMessage, sameAgain, movedMessage, movedDiff, missing,
      changedScore: scoreOf(moved, changed[3].itemId) !== scoreOf(first, changed[3].itemId) };
  },
  async timeout() {
    const r = await RerankerClient.load(manifest, {
      storage: "memory", workerUrl: "/probe/spy-worker.js", timeout: 1000 });
    await r.observe(click(1));
    const t0 = performance.now();
    const hung = await code(r.rerank([{ itemId: "hang" }]));
    const waitedMs = performance.now() - t0;
    const next = await r.rerank(candidates);
    const out = { hung, waitedMs, nextPersonalised: next.personalised, nextItems: next.items.length };
    const pending = code(r.rerank([{ itemId: "hang" }]));
    await sleep(100);
    r.terminate();
    out.pendingAfterTerminate = await pending;
    out.afterTerminate = await code(r.rerank(candidates));
    return out;
  },
  async storedSession() {
    sessionStorage.clear();
    const first = await RerankerClient.load(manifest);
    await first.observe(click(1));
    first.terminate();
    const key = sessionStorage.key(0);
    sessionStorage.setItem(key, "{not json");
    const r1 = await RerankerClient.load(manifest);
    const corrupt = { discarded: r1.discarded,
      personalised: (await r1.rerank(candidates)).personalised, session: r1.session().length };
    r1.terminate();
    const now = Date.now();
    sessionStorage.setItem(key, JSON.stringify([
      { itemId: page.items[1].id, kind: "click", timestamp: now, vector: [0.5, 0.5, 0.5] },
      { ...click(2), timestamp: now },
    ]));
    const r2 = await RerankerClient.load(manifest);
    const ranked = await r2.rerank(candidates);
    const wrongLength = { discarded: r2.discarded, session: r2.session().map((e) => e.itemId),
      second: page.items[2].id, personalised: ranked.personalised,
      stored: JSON.parse(sessionStorage.getItem(key) ?? "[]").length };
    r2.terminate();
    // A page once listed an item with a malformed vector (refused), then the shopper clicks
    // it by id: the event must not carry that vector into the session.
    sessionStorage.clear();
    const r3 = await RerankerClient.load(manifest, { storage: "memory" });
    const listed = await code(r3.rerank([{ itemId: "bad", vector: [1, 2, 3] }, ...candidates]));
    await r3.observe({ itemId: "bad", kind: "click" });
    await r3.observe(click(1));
    const after = await code(r3.rerank(candidates));
    r3.terminate();
    return { corrupt, wrongLength, malformedListed: { listed, after } };
  },
};
// A publish in the middle of a session: three clicks on the old version, then the new one.
window.publishStart = async () => {
  sessionStorage.clear();
  const r = await RerankerClient.load(manifest);
  for (const i of [1, 4, 7]) await r.observe(click(i));
  const before = await r.rerank(candidates);
  r.terminate();
  return { version: r.modelVersion, order: before.items.map((i) => i.itemId) };
};
window.publishAfter = async () => {
  // The version the test published (the candidate page may be cached for a minute).
  const url = `/v1/models/${encodeURIComponent(window.nextVersion)}/browser/manifest.json`;
  const next = page;
  const vectorRequests = () => performance.getEntriesByType("resource")
    .filter((e) => e.name.includes("/vectors?")).length;
  const requestsBefore = vectorRequests();
  const r = await RerankerClient.load(url);
  const after = await r.rerank(next.items.map((p) => ({ itemId: p.id, vector: p.vector })));
  const out = { version: r.modelVersion, migrated: r.migrated,
    session: r.session().map((e) => e.itemId),
    withVectors: r.session().filter((e) => e.vector?.length).length,
    personalised: after.personalised, order: after.items.map((i) => i.itemId),
    vectorRequests: vectorRequests() - requestsBefore,
    clicked: [1, 4, 7].map((i) => page.items[i].id), keys: sessionStorage.length };
  r.terminate();
  return out;
};
// The swap to the WebGPU worker replays the session with each event's content: an item the
// bundle does not know, observed with content only, scores the same after the swap.
window.probes.webgpuSwap = async () => {
  sessionStorage.clear();
  let status = null;
  const gpu = await RerankerClient.load(manifest, {
    storage: "memory", webgpu: "force", onStatus: (s) => { status = s; } });
  const cpu = await RerankerClient.load(manifest, { storage: "memory", webgpu: "off" });
  const unknown = { itemId: "not-in-the-bundle", kind: "click",
    content: { category: page.items[2].category ?? undefined, priceLevel: 3 } };
  for (const c of [gpu, cpu]) {
    await c.observe(unknown);
    await c.observe(click(1));
  }
  await gpu.rerank(candidates);
  for (let i = 0; i < 1800 && !status; i++) await sleep(50);
  const a = await gpu.rerank(candidates);
  const b = await cpu.rerank(candidates);
  const cpuScores = new Map(b.items.map((i) => [i.itemId, i.score]));
  const maxDiff = Math.max(...a.items.map((i) => Math.abs(i.score - cpuScores.get(i.itemId))));
  gpu.terminate();
  cpu.terminate();
  return { status, backend: a.backend, maxDiff };
};
window.probes.fetchVectors = async () => {
  const ids = page.items.slice(0, 5).map((p) => p.id);
  const got = await fetchVectors(page.model_version, [...ids, ids[0]]);
  const diff = Math.max(...page.items.slice(0, 5).flatMap((p) =>
    p.vector.map((x, i) => Math.abs(x - (got.get(p.id)?.[i] ?? Infinity)))));
  // A search engine's long list (1500 ids: the page's and unknown ones) does not fit in a
  // URL: two POSTs (1000 ids + the rest), the same vectors.
  const posts = () => performance.getEntriesByType("resource")
    .filter((e) => /\/vectors$/.test(e.name)).length;
  const postsBefore = posts();
  const long = [...page.items.map((p) => p.id)];
  for (let i = 0; long.length < 1500; i++) long.push(`from-search-engine-${i}`);
  const many = await fetchVectors(page.model_version, long);
  const longDiff = Math.max(...page.items.flatMap((p) =>
    p.vector.map((x, i) => Math.abs(x - (many.get(p.id)?.[i] ?? Infinity)))));
  // The direct API exports the same helper.
  const direct = (await import("/pkg/sessionrank.js")).fetchVectors === fetchVectors;
  return { size: got.size, maxDiff: diff, longSize: many.size, pageSize: page.items.length,
    longDiff, posts: posts() - postsBefore, direct };
};
window.probes.publishStart = window.publishStart;
window.probes.publishAfter = window.publishAfter;
window.results = {};
window.run = (name) => {
  window.probes[name]().then(
    (v) => { window.results[name] = { ok: v }; },
    (e) => { window.results[name] = { error: `${e?.code ?? ""} ${e?.message ?? e}` }; },
  );
};
document.body.dataset.state = "ready";
"#;

/// The package's worker, spied on: a rerank of `[{itemId: "hang"}]` never returns (a hung
/// worker), and `{id: -1, op: "resources"}` answers the worker's resource list.
const SPY_WORKER_JS: &str = r#"
import "/pkg/sessionrank-worker.js";
const real = self.onmessage;
self.onmessage = (e) => {
  const d = e.data;
  if (d?.op === "rerank" && d.args?.candidates?.[0]?.itemId === "hang") for (;;) {}
  if (d?.id === -1) {
    self.postMessage({ id: -1, result: performance.getEntriesByType("resource").map((r) => r.name) });
    return;
  }
  real(e);
};
"#;

async fn probe(b: &Browser, name: &str) -> Value {
    b.js(&format!("window.run('{name}'); return null")).await;
    let v = b.wait_for(&format!("window.results['{name}']"), name).await;
    assert!(v.get("error").is_none(), "probe {name} failed: {v}");
    v["ok"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_client_storage_consent_save_data_timeout_and_stored_sessions() {
    if !can_run() {
        return;
    }
    let site = Site::start().await;
    let dir = site.web.join("probe");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("index.html"),
        "<!doctype html><meta charset=utf-8><link rel=icon href=\"data:,\"><body data-state=loading>\
         <p id=status></p><script type=module src=probe.js></script>",
    )
    .expect("write");
    std::fs::write(dir.join("probe.js"), PROBE_JS).expect("write");
    std::fs::write(dir.join("spy-worker.js"), SPY_WORKER_JS).expect("write");
    let b = Browser::start().await;
    assert_eq!(b.open_page(&format!("{}/probe/", site.url)).await, "ready");

    let s = probe(&b, "storage").await;
    assert_eq!(s["noneStored"], 0, "storage none stores nothing: {s}");
    assert_eq!(s["nonePersonalised"], true, "storage none still personalises: {s}");
    assert_eq!(s["noneSession"], 0, "{s}");
    assert_eq!(s["sessionStored"], 1, "the default stores the session: {s}");

    let c = probe(&b, "consent").await;
    assert_eq!(c["beforePersonalised"], false, "no consent, no personalisation: {c}");
    assert_eq!(c["storedBefore"], 0, "no consent, nothing stored: {c}");
    assert_eq!(c["afterPersonalised"], true, "{c}");
    assert_eq!(c["session"], serde_json::json!([c["second"]]), "from that click on: {c}");
    assert_eq!(c["storedAfter"], 1, "{c}");

    let d = probe(&b, "saveData").await;
    assert_eq!(d["status"]["backend"], "cpu", "{d}");
    let reason = d["status"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("Save-Data"), "the reason names Save-Data: {d}");
    assert_eq!(d["webgpuRequests"], 0, "no request for the WebGPU artefact: {d}");
    assert!(d["requests"].as_u64().unwrap_or(0) > 0, "the worker's requests are seen: {d}");

    // Vectors the worker already holds are not sent again; what it scores is the same.
    let e = probe(&b, "elision").await;
    assert_eq!(e["firstMessage"], serde_json::json!({ "vectors": 20, "known": 0 }), "{e}");
    assert_eq!(e["againMessage"], serde_json::json!({ "vectors": 0, "known": 20 }), "{e}");
    assert_eq!(e["sameAgain"], true, "the worker put the vectors back: {e}");
    assert_eq!(e["movedMessage"], serde_json::json!({ "vectors": 1, "known": 19 }), "{e}");
    assert!(e["movedDiff"].as_f64().unwrap_or(f64::MAX) < 1e-6, "as a fresh client scores it: {e}");
    assert_eq!(e["changedScore"], true, "{e}");
    assert_eq!(e["missing"], "vectors_missing", "{e}");

    let t = probe(&b, "timeout").await;
    assert_eq!(t["hung"], "timeout", "{t}");
    let waited = t["waitedMs"].as_f64().unwrap_or(f64::MAX);
    assert!((900.0..10_000.0).contains(&waited), "rejected after ~1 s: {t}");
    assert_eq!(t["nextPersonalised"], true, "the next call works, session replayed: {t}");
    assert_eq!(t["nextItems"], 20, "{t}");
    assert_eq!(t["pendingAfterTerminate"], "terminated", "{t}");
    assert_eq!(t["afterTerminate"], "terminated", "{t}");

    let r = probe(&b, "storedSession").await;
    let corrupt = r["corrupt"]["discarded"].as_str().unwrap_or_default();
    assert!(corrupt.contains("unreadable"), "{r}");
    assert_eq!(r["corrupt"]["session"], 0, "{r}");
    assert_eq!(r["corrupt"]["personalised"], false, "{r}");
    let wrong = r["wrongLength"]["discarded"].as_str().unwrap_or_default();
    assert!(wrong.contains("refused") && wrong.contains("invalid_input"), "{r}");
    assert_eq!(r["wrongLength"]["session"], serde_json::json!([r["wrongLength"]["second"]]));
    assert_eq!(r["wrongLength"]["personalised"], true, "{r}");
    assert_eq!(r["wrongLength"]["stored"], 1, "the refused event is gone from storage: {r}");
    assert_eq!(r["malformedListed"]["listed"], "invalid_input", "{r}");
    assert_eq!(r["malformedListed"]["after"], "resolved", "later re-ranks work: {r}");

    // The WebGPU swap keeps content-only events (SwiftShader in headless Chromium; where no
    // adapter exists the worker stays on the CPU and there is no swap to check).
    let w = probe(&b, "webgpuSwap").await;
    if w["status"]["backend"] == "webgpu" {
        assert_eq!(w["backend"], "webgpu", "{w}");
        let diff = w["maxDiff"].as_f64().unwrap_or(f64::MAX);
        assert!(diff < 1e-4, "the swapped worker scores the same session (tolerance 1e-4): {w}");
    } else {
        eprintln!("no WebGPU swap in this browser ({w}); the content replay is not exercised");
    }

    // The helper for a shop's own list: the same vectors as the candidate page's.
    let v = probe(&b, "fetchVectors").await;
    assert_eq!(v["size"], 5, "{v}");
    assert!(v["maxDiff"].as_f64().unwrap_or(f64::MAX) < 1e-6, "{v}");
    assert_eq!(v["longSize"], v["pageSize"], "the long list's known ids all come back: {v}");
    assert!(v["longDiff"].as_f64().unwrap_or(f64::MAX) < 1e-6, "{v}");
    assert_eq!(v["posts"], 2, "a list too long for a URL: one POST per 1000 ids: {v}");
    assert_eq!(v["direct"], true, "`sessionrank` exports the same fetchVectors: {v}");

    // A publish mid-session: the same weights under a new version, made live.
    let before = probe(&b, "publishStart").await;
    let mut next = site.bundle.clone();
    next.manifest.model_version = "20261124-000000-republished".into();
    let published = site.state.models.publish(next, true).await.expect("publish");
    b.js(&format!("window.nextVersion = '{published}'; return null")).await;
    let after = probe(&b, "publishAfter").await;
    assert_eq!(after["version"], published.as_str(), "{after}");
    assert_eq!(after["migrated"]["from"], before["version"], "{after}");
    assert_eq!(after["migrated"]["events"], 3, "{after}");
    assert_eq!(after["session"], after["clicked"], "every earlier click kept: {after}");
    assert_eq!(after["withVectors"], 3, "vectors from the new version: {after}");
    assert_eq!(after["vectorRequests"], 1, "in one request: {after}");
    assert_eq!(after["keys"], 1, "the old version's stored session is gone: {after}");
    assert_eq!(after["personalised"], true, "{after}");
    assert_eq!(after["order"], before["order"], "same weights, same clicks: same order");

    let errors: Vec<String> =
        b.console_errors().await.into_iter().filter(|e| !e.contains("sessionrank:")).collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    site.stop().await;
}
