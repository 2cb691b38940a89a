// sessionrank in a module Web Worker, so inference never blocks the page.
//
// Protocol (one message per request, answered once with the same id):
//   page → worker  { id, op, args }
//     op "load"    args { manifestUrl } | { manifest: Uint8Array, files: Map|object }
//                  → { modelVersion, storageKey }
//     op "observe" args { event }                   → null
//     op "restore" args { events: SessionEvent[] }  → { sessionLength } (replays a stored session)
//     op "rerank"  args { candidates }              → packed ranking (below)
//     op "reset"                                    → null
//   worker → page  { id, ok: true, result } | { id, ok: false, error: {name, message, code, …} }
//
// A ranking travels packed: `order` (Uint32Array: upstream rank of each result, best first)
// and `scores` (Float32Array) are transferred, not copied; the page already has the ids, so
// sessionrank-client.js rebuilds `{ items: [{itemId, score, upstreamRank, because}], … }`.
//
// Workers have no sessionStorage: the worker keeps the session in memory and the client
// mirrors it in the page's sessionStorage (and replays it with "restore" after a reload).
//
// WebGPU, lazily (tryWebGpu below): after the first re-rank, where `navigator.gpu` has an
// adapter, this worker starts a second one on the WebGPU artefact (sessionrank_webgpu.js,
// ~3x the CPU module) with the same bundle. Re-ranks keep running here on the CPU meanwhile.
// If that worker's warm-up race chose WebGPU (it beat its own CPU engine), the session is
// replayed into it and requests are forwarded to it from then on; this worker keeps its CPU
// session in step, so any later failure there falls back here without losing the session.
// The outcome is reported once as an unsolicited `{ status: { backend, reason, warmup } }`
// message (no `id`: the client ignores it). The worker URL's `?webgpu=off` never tries;
// `?webgpu=force` swaps whenever WebGPU works, faster or not (tests, benchmarks:
// `RerankerClient.load(source, { workerUrl })`).

import init, { Reranker } from "./pkg/sessionrank.js";

// "webgpu" in the second worker (started with ?backend=webgpu), "cpu" in the page's.
const ROLE = new URL(import.meta.url).searchParams.get("backend") === "webgpu" ? "webgpu" : "cpu";
const WEBGPU = new URL(import.meta.url).searchParams.get("webgpu") ?? "auto";

let reranker = null;
let initialised = null;
// What "load" was given (the WebGPU worker loads the same bundle), until the upgrade is done.
let source = null;
let upgradeStarted = false;
// The WebGPU worker once it won the race: every request goes there too.
let delegate = null;

async function loadPackage() {
  if (ROLE === "webgpu") {
    const pkg = await import("./pkg/sessionrank_webgpu.js");
    await pkg.default();
    return pkg.Reranker;
  }
  initialised ??= init();
  await initialised;
  return Reranker;
}

const ops = {
  async load(args) {
    const Engine = await loadPackage();
    // The WebGPU worker races WebGPU against its CPU engine; this one is the CPU package.
    const backend = WEBGPU === "force" ? "webgpu" : "auto";
    const options = ROLE === "webgpu" ? { storage: "memory", backend } : { storage: "memory" };
    const next = args.manifestUrl
      ? await Engine.load(args.manifestUrl, options)
      : Engine.fromBytes(args.manifest, args.files, options);
    dropDelegate(null);
    reranker = next;
    source = args;
    upgradeStarted = false;
    statusSent = false;
    seenVectors.clear();
    const result = { modelVersion: reranker.modelVersion, storageKey: reranker.storageKey };
    if (ROLE === "webgpu") {
      const warmup = await reranker.ready();
      Object.assign(result, { backend: reranker.backend, warmup });
    }
    return { result };
  },
  async observe(args) {
    loaded().observe(withSeenVector(args.event));
    await forward("observe", args);
    return { result: null };
  },
  async restore(args) {
    const r = loaded();
    r.reset();
    for (const event of args.events ?? []) {
      try {
        r.observe(event);
      } catch {
        // A stored event this model version refuses is dropped, not fatal.
      }
    }
    await forward("restore", args);
    return { result: { sessionLength: r.sessionLength } };
  },
  async rerank(args) {
    if (delegate) {
      learnVectors(args.candidates);
      try {
        return await delegate.call("rerank", args);
      } catch (e) {
        if (e?.code === "invalid_input") throw e;
        dropDelegate(`the WebGPU worker failed (${e?.message ?? e}); back on the CPU`);
      }
    }
    const ranking = await loaded().rerank(args.candidates);
    if (ROLE === "cpu" && WEBGPU !== "off" && !upgradeStarted) {
      upgradeStarted = true;
      // Not awaited: re-ranks go on here while the WebGPU worker loads and warms up.
      tryWebGpu(reranker);
    }
    const n = ranking.items.length;
    const order = new Uint32Array(n);
    const scores = new Float32Array(n);
    const because = new Array(n);
    ranking.items.forEach((item, i) => {
      order[i] = item.upstreamRank;
      scores[i] = item.score;
      because[i] = item.because;
    });
    const { personalised, reason, backend, millis, timings } = ranking;
    return {
      result: { order, scores, because, personalised, reason, backend, millis, timings },
      transfer: [order.buffer, scores.buffer],
    };
  },
  async reset() {
    loaded().reset();
    await forward("reset", {});
    return { result: null };
  },
};

// While the WebGPU worker scores, this worker's engine never sees the candidate lists, so it
// cannot learn their vectors itself (crates/wasm/src/vectors.rs): they are kept here, bounded
// the same way, and attached to events observed by id, so a fallback scores the same session.
const seenVectors = new Map();
const SEEN_VECTORS_MAX = 4096;

function learnVectors(candidates) {
  if (!Array.isArray(candidates)) return;
  for (const c of candidates) {
    if (c === null || typeof c !== "object" || c.vector == null) continue;
    const id = String(c.itemId ?? c.item_id);
    seenVectors.delete(id);
    seenVectors.set(id, c.vector);
    if (seenVectors.size > SEEN_VECTORS_MAX) seenVectors.delete(seenVectors.keys().next().value);
  }
}

function withSeenVector(event) {
  if (!delegate || event === null || typeof event !== "object" || event.vector != null) return event;
  const vector = seenVectors.get(String(event.itemId ?? event.item_id));
  return vector ? { ...event, vector } : event;
}

// Send a session change on to the WebGPU worker (it already passed validation here).
async function forward(op, args) {
  if (!delegate) return;
  try {
    await delegate.call(op, args);
  } catch (e) {
    dropDelegate(`the WebGPU worker failed (${e?.message ?? e}); back on the CPU`);
  }
}

let statusSent = false;
function status(backend, reason, warmup = null) {
  if (statusSent) return;
  statusSent = true;
  self.postMessage({ status: { backend, reason, warmup } });
}

function dropDelegate(reason) {
  if (!delegate) return;
  delegate.worker.terminate();
  delegate = null;
  if (reason) {
    statusSent = false;
    status("cpu", reason);
  }
}

// A request/response channel to the WebGPU worker (the same protocol as the page's).
function connect(worker) {
  const pending = new Map();
  let next = 1;
  const failAll = (event) => {
    const error = Object.assign(new Error(`WebGPU worker: ${event?.message ?? "failed"}`), { code: "worker" });
    for (const p of pending.values()) p.reject(error);
    pending.clear();
  };
  worker.onmessage = ({ data }) => {
    const p = pending.get(data?.id);
    if (!p) return;
    pending.delete(data.id);
    if (data.ok) p.resolve(data.result);
    else p.reject(Object.assign(new Error(data.error.message), data.error));
  };
  worker.onerror = failAll;
  worker.onmessageerror = failAll;
  return {
    worker,
    call(op, args) {
      const id = next++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage({ id, op, args });
      }).then((result) => (op === "rerank" ? { result, transfer: [result.order.buffer, result.scores.buffer] } : result));
    },
  };
}

// Load the WebGPU artefact in a second worker and swap to it if its warm-up chose WebGPU.
// Any failure keeps this worker's CPU engine.
async function tryWebGpu(forModel) {
  const from = source;
  source = null;
  let remote = null;
  try {
    const adapter = await self.navigator?.gpu?.requestAdapter?.();
    if (!adapter) return status("cpu", "no WebGPU adapter");
    const url = new URL(import.meta.url);
    url.searchParams.set("backend", "webgpu");
    remote = connect(new Worker(url, { type: "module" }));
    const loaded = await remote.call("load", from);
    if (loaded.backend !== "webgpu") {
      remote.worker.terminate();
      return status("cpu", loaded.warmup?.reason ?? "the CPU was faster", loaded.warmup);
    }
    // The swap runs in the request queue, so no request is half-way on either side.
    await enqueue(async () => {
      if (reranker !== forModel) throw new Error("another model was loaded meanwhile");
      await remote.call("restore", { events: reranker.session() });
      delegate = remote;
    });
    status("webgpu", null, loaded.warmup);
  } catch (e) {
    remote?.worker.terminate();
    status("cpu", `WebGPU not used: ${e?.message ?? e}`);
  }
}

function loaded() {
  if (!reranker) {
    const e = new Error("no model loaded: send \"load\" first");
    e.name = "SessionrankError";
    e.code = "not_loaded";
    throw e;
  }
  return reranker;
}

// The fields of an Error survive postMessage only if copied out.
function plainError(e) {
  const out = { name: e?.name ?? "Error", message: String(e?.message ?? e) };
  for (const k of ["code", "field", "file", "url", "status", "found", "supported"]) {
    if (e && e[k] !== undefined) out[k] = e[k];
  }
  return out;
}

// Requests run one at a time, in arrival order: "observe" then "rerank" sees the click.
let queue = Promise.resolve();

// Run `task` after every request already queued, before any later one.
function enqueue(task) {
  const done = queue.then(task);
  queue = done.catch(() => {});
  return done;
}

self.onmessage = (message) => {
  const { id, op, args } = message.data ?? {};
  enqueue(async () => {
    try {
      const handler = ops[op];
      if (!handler) throw Object.assign(new Error(`unknown op ${op}`), { code: "invalid_input" });
      const { result, transfer } = await handler(args ?? {});
      self.postMessage({ id, ok: true, result }, transfer ?? []);
    } catch (e) {
      self.postMessage({ id, ok: false, error: plainError(e) });
    }
  });
};
