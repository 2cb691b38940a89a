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
// Errors reject with the same `SessionrankError` (name, code, field, …) the worker threw.
// The session — vectors included, so a replay scores exactly as the live session did — is
// mirrored in the page's sessionStorage (workers have none) under the model version's key,
// so it survives reloads and dies with the tab; without storage it lives in memory.

const WORKER_URL = new URL("./sessionrank-worker.js", import.meta.url);

export class RerankerClient {
  #worker;
  #pending = new Map();
  #nextId = 1;
  #storageKey = null;
  #session = [];
  modelVersion = null;

  constructor(worker) {
    this.#worker = worker;
    worker.onmessage = ({ data }) => {
      const call = this.#pending.get(data.id);
      if (!call) return;
      this.#pending.delete(data.id);
      if (data.ok) call.resolve(data.result);
      else call.reject(Object.assign(new Error(data.error.message), data.error));
    };
    const fail = (event) => {
      const error = Object.assign(new Error(`sessionrank worker failed: ${event.message ?? "unknown error"}`), {
        name: "SessionrankError",
        code: "worker",
      });
      for (const call of this.#pending.values()) call.reject(error);
      this.#pending.clear();
    };
    worker.onerror = fail;
    worker.onmessageerror = fail;
  }

  /** Start a worker and load a bundle by URL (or pass `{ manifest, files }` bytes). */
  static async load(source, { workerUrl = WORKER_URL } = {}) {
    const client = new RerankerClient(new Worker(workerUrl, { type: "module" }));
    try {
      const args = typeof source === "string" ? { manifestUrl: new URL(source, location.href).href } : source;
      const { modelVersion, storageKey } = await client.#call("load", args);
      client.modelVersion = modelVersion;
      client.#storageKey = `${storageKey}:worker`;
      client.#session = client.#readStored();
      if (client.#session.length) await client.#call("restore", { events: client.#session });
      return client;
    } catch (e) {
      client.terminate();
      throw e;
    }
  }

  /** Record a click / view / add_to_cart / purchase (see `Reranker.observe`); give the item's
   *  `vector` (from the candidate page) when the model is a browser bundle. */
  async observe(event) {
    const stamped = { timestamp: Date.now(), ...event };
    // A Float32Array would be stored as {"0": …} by JSON: keep a plain array of the same floats.
    if (stamped.vector != null) stamped.vector = Array.from(stamped.vector);
    await this.#call("observe", { event: stamped });
    this.#session.push(stamped);
    if (this.#session.length > 200) this.#session.splice(0, this.#session.length - 200);
    this.#writeStored();
  }

  /** Re-rank candidates (upstream order); resolves to the `Ranking` shape of `Reranker.rerank`. */
  async rerank(candidates) {
    const packed = await this.#call("rerank", { candidates });
    const items = Array.from(packed.order, (rank, i) => {
      const c = candidates[rank];
      return {
        itemId: String(typeof c === "object" && c !== null ? c.itemId ?? c.item_id : c),
        score: packed.scores[i],
        upstreamRank: rank,
        because: packed.because[i],
      };
    });
    const { personalised, reason, backend, millis, timings } = packed;
    return { items, personalised, reason, backend, millis, timings };
  }

  /** The session so far, oldest first (a copy): `{ itemId, kind, timestamp, vector?, content? }` as observed. */
  session() {
    return this.#session.map((e) => (e.vector ? { ...e, vector: e.vector.slice() } : { ...e }));
  }

  /** Forget the session (worker and sessionStorage). */
  async reset() {
    await this.#call("reset");
    this.#session = [];
    try {
      sessionStorage.removeItem(this.#storageKey);
    } catch {}
  }

  /** Stop the worker; pending calls reject. */
  terminate() {
    this.#worker.terminate();
    const error = Object.assign(new Error("sessionrank worker terminated"), { name: "SessionrankError", code: "worker" });
    for (const call of this.#pending.values()) call.reject(error);
    this.#pending.clear();
  }

  #call(op, args = {}) {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, op, args });
    });
  }

  #readStored() {
    try {
      const events = JSON.parse(sessionStorage.getItem(this.#storageKey) ?? "[]");
      return Array.isArray(events) ? events : [];
    } catch {
      return [];
    }
  }

  #writeStored() {
    try {
      sessionStorage.setItem(this.#storageKey, JSON.stringify(this.#session));
    } catch {
      // No storage or quota: the session lives in memory (and in the worker).
    }
  }
}
