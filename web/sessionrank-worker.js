// @ts-check
// sessionrank in a module Web Worker, so inference never blocks the page.
//
// Protocol (one message per request, answered once with the same id):
//   page → worker  { id, op, args }
//     op "load"    args ({ manifestUrl } | { manifest: Uint8Array, files: Map|object })
//                       & { webgpu?, webgpuReason?, wasmBase? }  → { modelVersion, storageKey }
//     op "observe" args { event }                   → null
//     op "restore" args { events: SessionEvent[] }
//                  → { sessionLength, refused: [{index, reason}] }
//                  (replays a stored session; an event this model refuses is dropped)
//     op "rerank"  args { candidates, rules? }      → packed ranking (below)
//     op "reset"                                    → null
//   worker → page  { id, ok: true, result } | { id, ok: false, error: {name, message, code, …} }
//
// A ranking travels packed: `order` (Uint32Array: upstream rank of each result, best first)
// and `scores` (Float32Array) are transferred, not copied; the page already has the ids, so
// sessionrank-client.js rebuilds `{ items: [{itemId, score, upstreamRank, because, effects,
// explanation}], hidden, … }`.
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
// message (no `id`: the client reads it as a status). "load"'s `webgpu: "off"` (or the worker
// URL's `?webgpu=off`) never tries, never downloads the artefact; `"force"` swaps whenever
// WebGPU works, faster or not (tests, benchmarks).

import init, { Reranker } from "./pkg/sessionrank.js";
import { prefetchBundle } from "./sessionrank-prefetch.js";
import { Channel, answer } from "./sessionrank-rpc.js";

/**
 * @typedef {import("./sessionrank-rpc.js").BackendReport} BackendReport
 * @typedef {import("./sessionrank-rpc.js").Handlers} Handlers
 * @typedef {import("./sessionrank-rpc.js").Loaded} Loaded
 * @typedef {import("./sessionrank-rpc.js").Op} Op
 * @typedef {import("./sessionrank-rpc.js").PackedRanking} PackedRanking
 * @typedef {import("./sessionrank-rpc.js").Protocol} Protocol
 * @typedef {import("./sessionrank-rpc.js").SessionEvent} SessionEvent
 */

// "webgpu" in the second worker (started with ?backend=webgpu), "cpu" in the page's.
const ROLE = new URL(import.meta.url).searchParams.get("backend") === "webgpu" ? "webgpu" : "cpu";
// The worker URL's choice; "load"'s `webgpu` overrides it.
let WEBGPU = new URL(import.meta.url).searchParams.get("webgpu") ?? "auto";
/** @type {string | undefined} why the WebGPU artefact is not tried (the page's reason) */
let webgpuReason;
/** @type {string | undefined} the folder of the `_bg.wasm` files (a CDN path), or next to this */
let wasmBase;

/** @type {Reranker | null} */
let reranker = null;
/** @type {Promise<unknown> | null} */
let initialised = null;
// What "load" was given (the WebGPU worker loads the same bundle), until the upgrade is done.
/** @type {Protocol["load"]["args"] | null} */
let source = null;
let upgradeStarted = false;
// The WebGPU worker once it won the race: every request goes there too.
/** @type {Channel | null} */
let delegate = null;

/** The package's `Reranker` class: the CPU build's, or in the WebGPU worker the WebGPU one's. */
async function loadPackage() {
  if (ROLE === "webgpu") {
    // The WebGPU build has the CPU build's `Reranker` (one crate, one feature more): typed as
    // that, so the check also passes without the optional WebGPU build, whose .d.ts is then
    // missing (SESSIONRANK_WASM_WEBGPU=0).
    /** @type {{ default: (init?: { module_or_path: URL }) => Promise<unknown>, Reranker: typeof Reranker }} */
    // @ts-ignore: ./pkg/sessionrank_webgpu.d.ts exists only after the WebGPU build
    const pkg = await import("./pkg/sessionrank_webgpu.js");
    const wasm = wasmBase ? new URL("sessionrank_webgpu_bg.wasm", wasmBase) : null;
    await (wasm ? pkg.default({ module_or_path: wasm }) : pkg.default());
    return pkg.Reranker;
  }
  const wasm = wasmBase ? new URL("sessionrank_bg.wasm", wasmBase) : null;
  initialised ??= wasm ? init({ module_or_path: wasm }) : init();
  await initialised;
  return Reranker;
}

/** @type {Handlers} */
const ops = {
  async load(args) {
    if (args.webgpu) WEBGPU = args.webgpu;
    webgpuReason = args.webgpuReason;
    wasmBase = args.wasmBase;
    const url = /** @type {{ manifestUrl?: string }} */ (args).manifestUrl;
    // The bundle downloads while the module compiles (a worker's first load does both).
    const prefetched = url ? prefetchBundle(url) : undefined;
    const Engine = await loadPackage();
    // The WebGPU worker races WebGPU against its CPU engine; this one is the CPU package.
    const backend = WEBGPU === "force" ? "webgpu" : "auto";
    /** @type {import("./pkg/sessionrank.js").RerankerOptions} */
    const options = ROLE === "webgpu" ? { storage: "memory", backend } : { storage: "memory" };
    const bytes = /** @type {import("./sessionrank-rpc.js").BundleBytes} */ (args);
    const next = url
      ? await Engine.load(url, { ...options, prefetched })
      : Engine.fromBytes(bytes.manifest, bytes.files, options);
    dropDelegate(null);
    reranker = next;
    source = args;
    upgradeStarted = false;
    statusSent = false;
    seenVectors.clear();
    observed.length = 0;
    /** @type {Loaded} */
    const result = { modelVersion: next.modelVersion, storageKey: next.storageKey };
    if (ROLE === "webgpu") {
      const warmup = await next.ready();
      Object.assign(result, { backend: next.backend, warmup });
    }
    return { result };
  },
  async observe(args) {
    loaded().observe(withSeenVector(args.event));
    remember([args.event]);
    await forward("observe", args);
    return { result: null };
  },
  async restore(args) {
    const r = loaded();
    r.reset();
    observed.length = 0;
    /** @type {{ index: number, reason: string }[]} */
    const refused = [];
    (args.events ?? []).forEach((event, index) => {
      try {
        r.observe(event);
        remember([event]);
      } catch (e) {
        // A stored event this model version refuses is dropped, not fatal: the page is told.
        refused.push({ index, reason: `${e?.code ?? "error"}: ${e?.message ?? e}` });
      }
    });
    await forward("restore", args);
    return { result: { sessionLength: r.sessionLength, refused } };
  },
  async rerank(args) {
    const restored = restoreVectors(args);
    if (delegate) {
      learnVectors(args.candidates);
      try {
        const result = await rerankOn(delegate, args);
        keepVectors(args.candidates, restored);
        return result;
      } catch (e) {
        if (e?.code === "invalid_input" || e?.code === "invalid_rules") throw e;
        dropDelegate(`the WebGPU worker failed (${e?.message ?? e}); back on the CPU`);
      }
    }
    const engine = loaded();
    const ranking = await engine.rerank(args.candidates, args.rules);
    keepVectors(args.candidates, restored);
    if (ROLE === "cpu" && !upgradeStarted) {
      upgradeStarted = true;
      // Not awaited: re-ranks go on here while the WebGPU worker loads and warms up.
      if (WEBGPU !== "off") tryWebGpu(engine);
      else status("cpu", `WebGPU not tried: ${webgpuReason ?? "webgpu=off"}`);
    }
    const n = ranking.items.length;
    const order = new Uint32Array(n);
    const scores = new Float32Array(n);
    /** @type {PackedRanking["because"]} */
    const because = new Array(n);
    /** @type {PackedRanking["effects"]} */
    const effects = new Array(n);
    /** @type {string[]} */
    const explanation = new Array(n);
    ranking.items.forEach((item, i) => {
      order[i] = item.upstreamRank;
      scores[i] = item.score;
      because[i] = item.because;
      effects[i] = item.effects;
      explanation[i] = item.explanation;
    });
    const { personalised, reason, hidden, backend, millis, timings } = ranking;
    return {
      result: {
        order, scores, because, effects, explanation, personalised, reason, hidden, backend, millis, timings,
      },
      transfer: [order.buffer, scores.buffer],
    };
  },
  async reset() {
    loaded().reset();
    observed.length = 0;
    await forward("reset", {});
    return { result: null };
  },
};

// The events as the page gave them (content included), oldest first, bounded as the engine's
// session is: `Reranker.session()` returns ids, kinds, times and vectors but not `content`,
// so a replay into the WebGPU worker takes the content from here (see `replayable`).
/** @type {SessionEvent[]} */
const observed = [];
const OBSERVED_MAX = 200;

/** @param {SessionEvent[]} events accepted by the engine */
function remember(events) {
  observed.push(...events);
  if (observed.length > OBSERVED_MAX) observed.splice(0, observed.length - OBSERVED_MAX);
}

/**
 * The engine's session with each event's `content` as observed: what the WebGPU worker needs
 * to score the same session (an unknown item observed with content but no vector would
 * otherwise become a content-less unknown item there).
 * @param {Reranker} engine
 * @returns {SessionEvent[]}
 */
function replayable(engine) {
  const live = engine.session();
  const given = observed.slice(-live.length);
  return live.map((e, i) => {
    const content = given.length === live.length ? given[i]?.content : undefined;
    return content && e.content == null ? { ...e, content } : e;
  });
}

// While the WebGPU worker scores, this worker's engine never sees the candidate lists, so it
// cannot learn their vectors itself (crates/wasm/src/vectors.rs): they are kept here, bounded
// the same way, and attached to events observed by id, so a fallback scores the same session.
/** @type {Map<string, number[] | Float32Array>} */
const seenVectors = new Map();
const SEEN_VECTORS_MAX = 4096;

/** Candidates' vectors by item id, as the client sent them (its `#elide` leaves out the ones
 *  sent before and lists them in `known`). Twice the client's bound, same order. */
/** @type {Map<string, number[] | Float32Array>} */
const candidateVectors = new Map();
const CANDIDATE_VECTORS_MAX = 4096;

/** Put back the vectors the client left out; `vectors_missing` when one is not here.
 *  @param {Protocol["rerank"]["args"]} args
 *  @returns {Set<number>} the indices put back */
function restoreVectors(args) {
  const restored = new Set(args.known ?? []);
  if (!restored.size) return restored;
  for (const i of restored) {
    const c = /** @type {any} */ (args.candidates[i]);
    const v = c && typeof c === "object" ? candidateVectors.get(String(c.itemId ?? c.item_id)) : undefined;
    if (!v) {
      throw Object.assign(new Error("this worker does not hold an item's vector: send them all"), {
        name: "SessionrankError",
        code: "vectors_missing",
      });
    }
    c.vector = v;
  }
  delete args.known;
  return restored;
}

/** Remember the vectors a re-rank that succeeded was sent (the client remembers the same
 *  ones, in the same order); those put back are not sent, so not moved.
 *  @param {Protocol["rerank"]["args"]["candidates"]} candidates
 *  @param {Set<number>} restored */
function keepVectors(candidates, restored) {
  for (const [i, c] of candidates.entries()) {
    if (restored.has(i) || c === null || typeof c !== "object" || c.vector == null) continue;
    const id = String(c.itemId ?? /** @type {any} */ (c).item_id);
    candidateVectors.delete(id);
    candidateVectors.set(id, c.vector);
    if (candidateVectors.size > CANDIDATE_VECTORS_MAX) {
      candidateVectors.delete(/** @type {string} */ (candidateVectors.keys().next().value));
    }
  }
}

/** @param {unknown} candidates */
function learnVectors(candidates) {
  if (!Array.isArray(candidates)) return;
  for (const c of candidates) {
    if (c === null || typeof c !== "object" || c.vector == null) continue;
    const id = String(c.itemId ?? c.item_id);
    seenVectors.delete(id);
    seenVectors.set(id, c.vector);
    if (seenVectors.size > SEEN_VECTORS_MAX) seenVectors.delete(/** @type {string} */ (seenVectors.keys().next().value));
  }
}

/**
 * @param {SessionEvent} event
 * @returns {SessionEvent}
 */
function withSeenVector(event) {
  if (!delegate || event === null || typeof event !== "object" || event.vector != null) return event;
  // `item_id`: the HTTP API's name, which the package accepts too.
  const vector = seenVectors.get(String(event.itemId ?? /** @type {any} */ (event).item_id));
  return vector ? { ...event, vector } : event;
}

/**
 * Send a session change on to the WebGPU worker (it already passed validation here).
 * @template {Op} K
 * @param {K} op
 * @param {Protocol[K]["args"]} args
 */
async function forward(op, args) {
  if (!delegate) return;
  try {
    await delegate.call(op, args);
  } catch (e) {
    dropDelegate(`the WebGPU worker failed (${e?.message ?? e}); back on the CPU`);
  }
}

let statusSent = false;
/**
 * Report the backend outcome to the page, once.
 * @param {"cpu" | "webgpu"} backend
 * @param {string | null} reason
 * @param {BackendReport | null} [warmup]
 */
function status(backend, reason, warmup = null) {
  if (statusSent) return;
  statusSent = true;
  self.postMessage({ status: { backend, reason, warmup } });
}

/** @param {string | null} reason why, reported to the page; `null`: a new model, no report */
function dropDelegate(reason) {
  if (!delegate) return;
  delegate.terminate(terminated());
  delegate = null;
  if (reason) {
    statusSent = false;
    status("cpu", reason);
  }
}

/**
 * A channel to the WebGPU worker (the protocol the page speaks to this one).
 * @param {Worker} worker
 */
function connect(worker) {
  return new Channel(worker, (message) =>
    Object.assign(new Error(`WebGPU worker: ${message ?? "failed"}`), { code: "worker" }),
  );
}

function terminated() {
  return Object.assign(new Error("WebGPU worker terminated"), { code: "worker" });
}

/**
 * A re-rank on the WebGPU worker: its packed ranking is handed on as it came, the buffers
 * transferred once more.
 * @param {Channel} channel
 * @param {Protocol["rerank"]["args"]} args
 */
async function rerankOn(channel, args) {
  const result = await channel.call("rerank", args);
  return { result, transfer: [result.order.buffer, result.scores.buffer] };
}

// Load the WebGPU artefact in a second worker and swap to it if its warm-up chose WebGPU.
// Any failure keeps this worker's CPU engine.
/** @param {Reranker} forModel the model loaded when it started */
async function tryWebGpu(forModel) {
  const from = source;
  source = null;
  /** @type {Channel | null} */
  let remote = null;
  try {
    const adapter = await self.navigator?.gpu?.requestAdapter?.();
    if (!adapter) return status("cpu", "no WebGPU adapter");
    const url = new URL(import.meta.url);
    url.searchParams.set("backend", "webgpu");
    const channel = connect(new Worker(url, { type: "module" }));
    remote = channel;
    const loaded = await channel.call("load", /** @type {Protocol["load"]["args"]} */ (from));
    if (loaded.backend !== "webgpu") {
      channel.terminate(terminated());
      return status("cpu", loaded.warmup?.reason ?? "the CPU was faster", loaded.warmup);
    }
    // The swap runs in the request queue, so no request is half-way on either side.
    await enqueue(async () => {
      if (reranker !== forModel) throw new Error("another model was loaded meanwhile");
      await channel.call("restore", { events: replayable(forModel) });
      delegate = channel;
    });
    status("webgpu", null, loaded.warmup);
  } catch (e) {
    remote?.terminate(terminated());
    status("cpu", `WebGPU not used: ${e?.message ?? e}`);
  }
}

function loaded() {
  if (!reranker) {
    throw Object.assign(new Error("no model loaded: send \"load\" first"), {
      name: "SessionrankError",
      code: "not_loaded",
    });
  }
  return reranker;
}

// Requests run one at a time, in arrival order: "observe" then "rerank" sees the click.
/** @type {Promise<unknown>} */
let queue = Promise.resolve();

/**
 * Run `task` after every request already queued, before any later one.
 * @template T
 * @param {() => Promise<T>} task
 * @returns {Promise<T>}
 */
function enqueue(task) {
  const done = queue.then(task);
  queue = done.catch(() => {});
  return done;
}

self.onmessage = ({ data }) => {
  enqueue(() => answer(data, ops, (response, transfer) => self.postMessage(response, transfer)));
};
