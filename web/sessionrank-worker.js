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

import init, { Reranker } from "./pkg/sessionrank.js";

let reranker = null;
let initialised = null;

const ops = {
  async load(args) {
    initialised ??= init();
    await initialised;
    const options = { storage: "memory" };
    reranker = args.manifestUrl
      ? await Reranker.load(args.manifestUrl, options)
      : Reranker.fromBytes(args.manifest, args.files, options);
    return { result: { modelVersion: reranker.modelVersion, storageKey: reranker.storageKey } };
  },
  observe(args) {
    loaded().observe(args.event);
    return { result: null };
  },
  restore(args) {
    const r = loaded();
    r.reset();
    for (const event of args.events ?? []) {
      try {
        r.observe(event);
      } catch {
        // A stored event this model version refuses is dropped, not fatal.
      }
    }
    return { result: { sessionLength: r.sessionLength } };
  },
  async rerank(args) {
    const ranking = await loaded().rerank(args.candidates);
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
  reset() {
    loaded().reset();
    return { result: null };
  },
};

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

self.onmessage = (message) => {
  const { id, op, args } = message.data ?? {};
  queue = queue.then(async () => {
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
