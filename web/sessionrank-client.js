// @ts-check
// The page side of sessionrank-worker.js: the same API as `Reranker`, every call a promise
// answered by the worker (request ids, so concurrent calls never resolve each other).
//
//   import { RerankerClient } from "sessionrank/worker";
//   const page = await (await fetch("/v1/candidates")).json();       // items with vectors
//   const r = await RerankerClient.load(`/v1/models/${page.model_version}/browser/manifest.json`);
//   await r.observe({ itemId: "123", kind: "click", vector: page.items[0].vector });
//   const { items } = await r.rerank(page.items.map((p) => ({ itemId: p.id, vector: p.vector })));
//   r.terminate();
//
// A browser bundle has no item table: items reach it as vectors (computed by the server's
// full model, shipped with the candidate page), on candidates and on session events alike.
//
// Errors reject with the same `SessionrankError` (name, code, field, …) the worker threw;
// the client adds `timeout` (a call outlived `options.timeout`: the hung worker is stopped
// and the next call starts a fresh one with the session replayed), `terminated` and `worker`.
// The session — vectors included, so a replay scores exactly as the live session did — is
// mirrored in the page's sessionStorage (workers have none) under the model version's key,
// so it survives reloads and dies with the tab (`storage: "session"`, the default);
// `"memory"` keeps it in this page only, `"none"` keeps nothing outside the worker.
// `consent: false`: events are dropped (nothing stored, no personalisation) until
// `grantConsent()`, and counted from that call on.
//
// Bundlers: the worker is created with the literal
// `new Worker(new URL("./sessionrank-worker.js", import.meta.url), { type: "module" })` and
// the wasm is found by `new URL("…_bg.wasm", import.meta.url)`, so Vite / webpack / esbuild
// emit both; `wasmBase` serves the two .wasm files from a CDN folder instead.

import { Channel } from "./sessionrank-rpc.js";

// The vectors of a shop's own list: plain fetches, no worker (the direct API exports it too).
export { fetchVectors } from "./sessionrank-vectors.js";

/**
 * @typedef {import("./sessionrank-rpc.js").BundleBytes} BundleBytes
 * @typedef {import("./sessionrank-rpc.js").CandidateInput} CandidateInput
 * @typedef {import("./sessionrank-rpc.js").Ranking} Ranking
 * @typedef {import("./sessionrank-rpc.js").Rules} Rules
 * @typedef {import("./sessionrank-rpc.js").SessionEvent} SessionEvent
 * @typedef {import("./sessionrank-rpc.js").Protocol} Protocol
 * @typedef {import("./sessionrank-rpc.js").Op} Op
 * @typedef {import("./sessionrank-rpc.js").PackedRanking} PackedRanking
 */

/** Sessions longer than this keep their newest events (the model reads the last `max_len`). */
const SESSION_MAX = 200;

/**
 * `RerankerClient.load`'s options.
 * @typedef {object} ClientOptions
 * @property {string | URL} [workerUrl] another worker script (default: the package's, found by
 *   the bundler)
 * @property {string | URL} [wasmBase] a folder (a CDN path) serving `sessionrank_bg.wasm` and
 *   `sessionrank_webgpu_bg.wasm`; default: next to the JavaScript
 * @property {"auto" | "off" | "force"} [webgpu] `"auto"` (default) tries the WebGPU artefact
 *   after the first re-rank, except on Save-Data, a metered (cellular) connection or
 *   `deviceMemory` < 4 GB; `"off"` never downloads it; `"force"` always tries it
 * @property {number} [timeout] milliseconds a call may take before it rejects with `timeout`
 *   (default 30000; 0: no limit). `load` is not limited (downloads)
 * @property {"session" | "memory" | "none"} [storage] where the session is kept (see above)
 * @property {boolean} [consent] `false`: no event is kept until `grantConsent()` (default true)
 * @property {(status: BackendStatus) => void} [onStatus] the worker's backend outcome, once
 * @property {(version: string, ids: string[]) => string} [vectorsUrl] where a session carried
 *   to another model version gets its vectors, in one GET (default: next to the manifest,
 *   `/v1/models/{version}/vectors?ids=…`)
 */

/**
 * The worker's backend report.
 * @typedef {{ backend: "cpu" | "webgpu", reason: string | null, warmup: unknown }} BackendStatus
 */

/** Item vectors the client remembers having sent; the worker keeps twice as many. */
const SENT_VECTORS_MAX = 2048;

/** Whether `v` has the numbers of `f32` (compared as f32; a NaN never matches).
 *  @param {Float32Array} f32 @param {ArrayLike<number>} v */
function sameFloats(f32, v) {
  for (let j = 0; j < f32.length; j++) if (f32[j] !== Math.fround(v[j])) return false;
  return true;
}

/**
 * A `SessionrankError` raised by the client itself.
 * @param {"timeout" | "terminated" | "worker"} code
 * @param {string} message
 */
function clientError(code, message) {
  return Object.assign(new Error(message), { name: "SessionrankError", code });
}

/** Why the WebGPU artefact (~3x the CPU one) is not downloaded on this device, or null. */
function webgpuVeto() {
  const nav = /** @type {any} */ (globalThis.navigator ?? {});
  const conn = nav.connection;
  if (conn?.saveData) return "Save-Data is on";
  if (conn?.type === "cellular" || conn?.metered) return "metered connection";
  if (typeof nav.deviceMemory === "number" && nav.deviceMemory < 4) return "deviceMemory < 4 GB";
  return null;
}

/**
 * @param {unknown} e
 * @returns {e is SessionEvent}
 */
function isStoredEvent(e) {
  if (e === null || typeof e !== "object") return false;
  const o = /** @type {Record<string, unknown>} */ (e);
  const id = o.itemId;
  return ((typeof id === "string" && id !== "") || Number.isInteger(id)) &&
    (o.kind === undefined || typeof o.kind === "string") &&
    (o.timestamp == null || Number.isFinite(o.timestamp)) &&
    (o.vector == null || (Array.isArray(o.vector) && o.vector.every(Number.isFinite)));
}

export class RerankerClient {
  /** @type {Channel | null} */
  #channel = null;
  /** @type {() => Worker} */
  #spawn;
  /** What `load` was given, to load a fresh worker after a timeout. */
  /** @type {Protocol["load"]["args"] | null} */
  #source = null;
  #timeout = 30000;
  /** @type {"session" | "memory" | "none"} */
  #storage = "session";
  #consent = true;
  /** @type {((status: BackendStatus) => void) | undefined} */
  #onStatus;
  /** @type {{ webgpu: "auto" | "off" | "force", wasmBase?: string | URL,
   *   vectorsUrl?: (version: string, ids: string[]) => string }} */
  #options = { webgpu: "auto" };
  /** The page's `sessionStorage` key of the mirrored session (set by `load`). */
  #storageKey = "";
  /** @type {SessionEvent[]} */
  #session = [];
  /** Vectors the worker holds, by item id (see `#elide`). */
  /** @type {Map<string, Float32Array>} */
  #sent = new Map();
  /** @type {string | null} */
  modelVersion = null;
  /** The backend the worker scores on (`"cpu"` until it reports a swap to WebGPU). */
  /** @type {"cpu" | "webgpu"} */
  backend = "cpu";
  /** The session carried over from another model version at the last load, or null. */
  /** @type {{ from: string, events: number } | null} */
  migrated = null;
  /** Why the stored session (or some of its events) was discarded at load, or null. */
  /** @type {string | null} */
  discarded = null;

  /**
   * @param {Worker | (() => Worker)} worker a started worker, or how to start one (needed to
   *   recover from a timeout)
   */
  constructor(worker) {
    this.#spawn = typeof worker === "function" ? worker : () => {
      throw clientError("worker", "sessionrank worker stopped and cannot be restarted");
    };
    this.#attach(typeof worker === "function" ? worker() : worker);
  }

  /**
   * Start a worker and load a bundle by URL (or pass `{ manifest, files }` bytes).
   * @param {string | BundleBytes} source
   * @param {ClientOptions} [options]
   */
  static async load(source, options = {}) {
    const { workerUrl, wasmBase, webgpu = "auto", timeout = 30000 } = options;
    const spawn = workerUrl
      ? () => new Worker(workerUrl, { type: "module" })
      : () => new Worker(new URL("./sessionrank-worker.js", import.meta.url), { type: "module" });
    const client = new RerankerClient(spawn);
    client.#timeout = timeout;
    client.#storage = options.storage ?? "session";
    client.#consent = options.consent ?? true;
    client.#onStatus = options.onStatus;
    client.#options = { webgpu, wasmBase, vectorsUrl: options.vectorsUrl };
    try {
      await client.#open(source, []);
      return client;
    } catch (e) {
      client.terminate();
      throw e;
    }
  }

  /**
   * Move to another model version (a publish: the candidate page names a new
   * `model_version`) in the same worker, keeping the session: its events (ids, kinds, times)
   * stay, their vectors are fetched from the new version in one request (`vectorsUrl`).
   * `load` does the same with a session stored under an earlier version.
   * @param {string | BundleBytes} source the new version's manifest URL (or bytes)
   */
  async switchModel(source) {
    await this.#open(source, this.#session);
  }

  /**
   * Load `source` in the worker and restore the session: `carried` (events of an earlier
   * version), else the one stored for this version, else one stored for an earlier version.
   * @param {string | BundleBytes} source
   * @param {SessionEvent[]} carried
   */
  async #open(source, carried) {
    const { webgpu, wasmBase } = this.#options;
    /** @type {Protocol["load"]["args"]} */
    const args =
      typeof source === "string" ? { manifestUrl: new URL(source, location.href).href } : source;
    const veto = webgpu === "auto" ? webgpuVeto() : null;
    this.#source = Object.assign({}, args, {
      webgpu: veto ? "off" : webgpu,
      webgpuReason: veto ?? (webgpu === "off" ? "webgpu: \"off\"" : undefined),
      wasmBase: wasmBase ? new URL(wasmBase, location.href).href : undefined,
    });
    const { modelVersion, storageKey } = await this.#call("load", this.#source, 0);
    const previous = this.modelVersion;
    this.modelVersion = modelVersion;
    const oldKey = this.#storageKey;
    this.#storageKey = `${storageKey}:worker`;
    this.#session = [];
    let events = carried;
    let from = previous !== modelVersion ? previous : null;
    if (!events.length) events = this.#readStored();
    if (!events.length) ({ events, from } = this.#storedElsewhere());
    if (events.length && from !== null) {
      events = await this.#refetchVectors(events, modelVersion, args);
      this.migrated = { from, events: events.length };
    }
    this.#session = events;
    if (oldKey && oldKey !== this.#storageKey) this.#forget(oldKey);
    if (!events.length) return;
    this.#writeStored();
    const { refused } = await this.#call("restore", { events });
    if (refused.length) {
      // e.g. a vector of another length than this model's: dropped, never replayed again.
      const gone = new Set(refused.map((r) => r.index));
      this.#session = this.#session.filter((_, i) => !gone.has(i));
      this.#discard(`${refused.length} stored event(s) refused: ${refused[0].reason}`);
      this.#writeStored();
    }
  }

  /**
   * A session stored under another model version (the newest one), its key then removed.
   * @returns {{ events: SessionEvent[], from: string | null }}
   */
  #storedElsewhere() {
    if (this.#storage !== "session") return { events: [], from: null };
    /** @type {{ events: SessionEvent[], from: string | null, last: number }} */
    let best = { events: [], from: null, last: -Infinity };
    try {
      const keys = Array.from({ length: sessionStorage.length }, (_, i) => sessionStorage.key(i));
      for (const key of keys) {
        const m = /^sessionrank:session:(.+):worker$/.exec(key ?? "");
        if (!m || key === null || key === this.#storageKey) continue;
        const events = this.#parseStored(sessionStorage.getItem(key));
        const last = Math.max(...events.map((e) => e.timestamp ?? 0));
        if (events.length && last > best.last) best = { events, from: m[1], last };
        this.#forget(key);
      }
    } catch {}
    return { events: best.events, from: best.from };
  }

  /**
   * `events` with their vectors from `version`, fetched in one request; an id the new version
   * cannot give a vector keeps none (it counts as an unknown item).
   * @param {SessionEvent[]} events
   * @param {string} version
   * @param {Protocol["load"]["args"]} args
   * @returns {Promise<SessionEvent[]>}
   */
  async #refetchVectors(events, version, args) {
    const kept = events.map(({ vector, ...e }) => /** @type {SessionEvent} */ (e));
    const ids = [...new Set(kept.map((e) => String(e.itemId)))];
    const manifestUrl = /** @type {{ manifestUrl?: string }} */ (args).manifestUrl;
    const suffix = /\/browser\/manifest\.json$/;
    const query = `?ids=${ids.map(encodeURIComponent).join(",")}`;
    const url = this.#options.vectorsUrl
      ? this.#options.vectorsUrl(version, ids)
      : manifestUrl && suffix.test(manifestUrl)
        ? `${manifestUrl.replace(suffix, "/vectors")}${query}`
        : null;
    if (!url) return kept;
    try {
      const r = await fetch(url);
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      /** @type {{ vectors: { item_id: string, vector: number[] }[] }} */
      const body = await r.json();
      const vectors = new Map(body.vectors.map((v) => [v.item_id, v.vector]));
      return kept.map((e) => {
        const vector = vectors.get(String(e.itemId));
        return vector ? { ...e, vector } : e;
      });
    } catch (e) {
      console.warn(`sessionrank: the session's vectors were not refetched (${e?.message ?? e})`);
      return kept;
    }
  }

  /** Whether events are kept (see `consent`). */
  get consented() {
    return this.#consent;
  }

  /** The shopper agreed: events observed from now on are kept and personalise. */
  grantConsent() {
    this.#consent = true;
  }

  /** Record a click / view / add_to_cart / purchase (see `Reranker.observe`); give the item's
   *  `vector` (from the candidate page) when the model is a browser bundle. Without consent
   *  the event is dropped.
   *  @param {SessionEvent} event */
  async observe(event) {
    if (!this.#consent) return;
    /** @type {SessionEvent} */
    const stamped = { timestamp: Date.now(), ...event };
    // A Float32Array would be stored as {"0": …} by JSON: keep a plain array of the same floats.
    if (stamped.vector != null) stamped.vector = Array.from(stamped.vector);
    await this.#call("observe", { event: stamped });
    if (this.#storage === "none") return;
    this.#session.push(stamped);
    const over = this.#session.length - SESSION_MAX;
    if (over > 0) this.#session.splice(0, over);
    this.#writeStored();
  }

  /** Re-rank candidates (upstream order) under the shop's `rules` (optional: pins,
   *  exclusions, boost and bury, a category cap, diversity, a displacement limit, a blend;
   *  see the package's `Rules`); resolves to the `Ranking` shape of `Reranker.rerank`.
   *  @param {CandidateInput[]} candidates
   *  @param {Rules} [rules]
   *  @returns {Promise<Ranking>} */
  async rerank(candidates, rules) {
    const { wire, known, sent } = this.#elide(candidates);
    /** @type {Protocol["rerank"]["args"]} */
    const args = { candidates: wire };
    if (known.length) args.known = known;
    if (rules !== undefined) args.rules = rules;
    /** @type {PackedRanking} */
    let packed;
    try {
      packed = await this.#call("rerank", args);
    } catch (e) {
      // A fresh worker (after a timeout) has none of the vectors: send them all, once.
      if (/** @type {any} */ (e)?.code !== "vectors_missing") throw e;
      this.#sent.clear();
      return this.rerank(candidates, rules);
    }
    for (const [id, v] of sent) this.#remember(id, v);
    const items = Array.from(packed.order, (rank, i) => {
      const c = candidates[rank];
      return {
        // `item_id`: the HTTP API's name, which the package accepts too.
        itemId: String(typeof c === "object" && c !== null ? c.itemId ?? /** @type {any} */ (c).item_id : c),
        score: packed.scores[i],
        upstreamRank: rank,
        because: packed.because[i],
        effects: packed.effects[i],
        explanation: packed.explanation[i],
      };
    });
    const { personalised, reason, hidden, backend, millis, timings } = packed;
    return { items, personalised, reason, hidden, backend, millis, timings };
  }

  /** The session so far, oldest first (a copy): `{ itemId, kind, timestamp, vector?, content? }`
   *  as observed; always empty with `storage: "none"`. */
  session() {
    return this.#session.map((e) => (e.vector ? { ...e, vector: e.vector.slice() } : { ...e }));
  }

  /** Forget the session (worker and sessionStorage). */
  async reset() {
    await this.#call("reset", {});
    this.#session = [];
    try {
      if (this.#storage === "session") sessionStorage.removeItem(this.#storageKey);
    } catch {}
  }

  /** Stop the worker; pending calls reject with `terminated`, later ones too. */
  terminate() {
    this.#spawn = () => {
      throw clientError("terminated", "sessionrank worker terminated");
    };
    this.#source = null;
    this.#channel?.terminate(clientError("terminated", "sessionrank worker terminated"));
    this.#channel = null;
  }

  /**
   * The page's candidates as the worker gets them: a vector the worker was sent before for
   * the same item (the same numbers, as f32) is left out and its index listed in `known` —
   * the worker puts it back. A page re-ranks the same ~100 items after every click: their
   * vectors (6,400 numbers) were most of each message's structured clone (~0.2 ms each way).
   * `sent`: the vectors this call sends, remembered once it succeeds.
   * @param {CandidateInput[]} candidates
   * @returns {{ wire: CandidateInput[], known: number[], sent: [string, Float32Array][] }}
   */
  #elide(candidates) {
    /** @type {number[]} */
    const known = [];
    /** @type {[string, Float32Array][]} */
    const sent = [];
    if (!Array.isArray(candidates)) return { wire: candidates, known, sent };
    const wire = candidates.map((c, i) => {
      if (c === null || typeof c !== "object") return c;
      const { vector, ...rest } = /** @type {any} */ (c);
      if (vector == null || typeof vector.length !== "number") return c;
      const id = String(rest.itemId ?? rest.item_id);
      const last = this.#sent.get(id);
      if (last && last.length === vector.length && sameFloats(last, vector)) {
        known.push(i);
        return rest;
      }
      sent.push([id, Float32Array.from(vector)]);
      return c;
    });
    return { wire, known, sent };
  }

  /** @param {string} id @param {Float32Array} v */
  #remember(id, v) {
    // Insertion order = the worker's (it stores exactly what it is sent, in order), and this
    // side keeps fewer: an id remembered here is still held there.
    this.#sent.delete(id);
    this.#sent.set(id, v);
    if (this.#sent.size > SENT_VECTORS_MAX) {
      this.#sent.delete(/** @type {string} */ (this.#sent.keys().next().value));
    }
  }

  /** @param {Worker} worker */
  #attach(worker) {
    this.#sent.clear();
    this.#channel = new Channel(worker, (message) =>
      clientError("worker", `sessionrank worker failed: ${message ?? "unknown error"}`),
    );
    // The worker's unsolicited backend report (no id: the channel leaves it alone).
    worker.addEventListener("message", ({ data }) => {
      if (!data || data.id !== undefined || !data.status) return;
      this.backend = data.status.backend === "webgpu" ? "webgpu" : "cpu";
      this.#onStatus?.(data.status);
    });
  }

  /**
   * One call, limited to `timeout` ms: a worker that outlives it is stopped, and the next call
   * starts a fresh one (same bundle, the session replayed).
   * @template {Op} K
   * @param {K} op
   * @param {Protocol[K]["args"]} args
   * @param {number} [timeout]
   * @returns {Promise<Protocol[K]["result"]>}
   */
  async #call(op, args, timeout = this.#timeout) {
    if (!this.#channel) await this.#restart();
    const channel = /** @type {Channel} */ (this.#channel);
    if (!timeout) return channel.call(op, args);
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    const expired = new Promise((_, reject) => {
      timer = setTimeout(() => {
        const error = clientError("timeout", `sessionrank worker: "${op}" took over ${timeout} ms`);
        if (this.#channel === channel) this.#channel = null;
        channel.terminate(error);
        reject(error);
      }, timeout);
    });
    try {
      return await Promise.race([channel.call(op, args), expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** A fresh worker with the same bundle and the session so far. */
  async #restart() {
    const worker = this.#spawn();
    if (!this.#source) throw clientError("terminated", "sessionrank worker terminated");
    this.#attach(worker);
    const channel = /** @type {Channel} */ (this.#channel);
    try {
      await channel.call("load", this.#source);
      if (this.#session.length) await channel.call("restore", { events: this.#session });
    } catch (e) {
      // Not half a worker: the next call starts another one.
      if (this.#channel === channel) this.#channel = null;
      channel.terminate(clientError("worker", "sessionrank worker restart failed"));
      throw e;
    }
  }

  /** The stored session, each event checked; what is refused is dropped with a reason. */
  #readStored() {
    if (this.#storage !== "session") return [];
    try {
      return this.#parseStored(sessionStorage.getItem(this.#storageKey));
    } catch {
      return [];
    }
  }

  /**
   * @param {string | null} text a stored session
   * @returns {SessionEvent[]}
   */
  #parseStored(text) {
    let events;
    try {
      events = JSON.parse(text ?? "[]");
    } catch (e) {
      this.#discard(`stored session unreadable (${e?.message ?? e})`);
      return [];
    }
    if (!Array.isArray(events)) {
      this.#discard("stored session is not a list");
      return [];
    }
    const kept = events.filter(isStoredEvent);
    const bad = events.length - kept.length;
    if (bad) this.#discard(`${bad} malformed stored event(s) dropped`);
    return kept;
  }

  /** @param {string} key */
  #forget(key) {
    try {
      sessionStorage.removeItem(key);
    } catch {}
  }

  /** @param {string} reason */
  #discard(reason) {
    this.discarded = reason;
    console.warn(`sessionrank: ${reason}`);
    if (this.#storage === "session") this.#forget(this.#storageKey);
  }

  #writeStored() {
    if (this.#storage !== "session") return;
    try {
      sessionStorage.setItem(this.#storageKey, JSON.stringify(this.#session));
    } catch {
      // No storage or quota: the session lives in memory (and in the worker).
    }
  }
}
