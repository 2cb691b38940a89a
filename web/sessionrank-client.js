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
// Errors reject with the same `SessionrankError` (name, code, field, …) the worker threw.
// The session — vectors included, so a replay scores exactly as the live session did — is
// mirrored in the page's sessionStorage (workers have none) under the model version's key,
// so it survives reloads and dies with the tab; without storage it lives in memory.

import { Channel } from "./sessionrank-rpc.js";

/**
 * @typedef {import("./sessionrank-rpc.js").BundleBytes} BundleBytes
 * @typedef {import("./sessionrank-rpc.js").CandidateInput} CandidateInput
 * @typedef {import("./sessionrank-rpc.js").Ranking} Ranking
 * @typedef {import("./sessionrank-rpc.js").SessionEvent} SessionEvent
 */

const WORKER_URL = new URL("./sessionrank-worker.js", import.meta.url);

export class RerankerClient {
  #channel;
  /** The page's `sessionStorage` key of the mirrored session (set by `load`). */
  #storageKey = "";
  /** @type {SessionEvent[]} */
  #session = [];
  /** @type {string | null} */
  modelVersion = null;

  /** @param {Worker} worker */
  constructor(worker) {
    this.#channel = new Channel(worker, (message) =>
      Object.assign(new Error(`sessionrank worker failed: ${message ?? "unknown error"}`), {
        name: "SessionrankError",
        code: "worker",
      }),
    );
  }

  /**
   * Start a worker and load a bundle by URL (or pass `{ manifest, files }` bytes).
   * @param {string | BundleBytes} source
   * @param {{ workerUrl?: string | URL }} [options]
   */
  static async load(source, { workerUrl = WORKER_URL } = {}) {
    const client = new RerankerClient(new Worker(workerUrl, { type: "module" }));
    try {
      const args = typeof source === "string" ? { manifestUrl: new URL(source, location.href).href } : source;
      const { modelVersion, storageKey } = await client.#channel.call("load", args);
      client.modelVersion = modelVersion;
      client.#storageKey = `${storageKey}:worker`;
      client.#session = client.#readStored();
      if (client.#session.length) await client.#channel.call("restore", { events: client.#session });
      return client;
    } catch (e) {
      client.terminate();
      throw e;
    }
  }

  /** Record a click / view / add_to_cart / purchase (see `Reranker.observe`); give the item's
   *  `vector` (from the candidate page) when the model is a browser bundle.
   *  @param {SessionEvent} event */
  async observe(event) {
    /** @type {SessionEvent} */
    const stamped = { timestamp: Date.now(), ...event };
    // A Float32Array would be stored as {"0": …} by JSON: keep a plain array of the same floats.
    if (stamped.vector != null) stamped.vector = Array.from(stamped.vector);
    await this.#channel.call("observe", { event: stamped });
    this.#session.push(stamped);
    if (this.#session.length > 200) this.#session.splice(0, this.#session.length - 200);
    this.#writeStored();
  }

  /** Re-rank candidates (upstream order); resolves to the `Ranking` shape of `Reranker.rerank`.
   *  @param {CandidateInput[]} candidates
   *  @returns {Promise<Ranking>} */
  async rerank(candidates) {
    const packed = await this.#channel.call("rerank", { candidates });
    const items = Array.from(packed.order, (rank, i) => {
      const c = candidates[rank];
      return {
        // `item_id`: the HTTP API's name, which the package accepts too.
        itemId: String(typeof c === "object" && c !== null ? c.itemId ?? /** @type {any} */ (c).item_id : c),
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
    await this.#channel.call("reset", {});
    this.#session = [];
    try {
      sessionStorage.removeItem(this.#storageKey);
    } catch {}
  }

  /** Stop the worker; pending calls reject. */
  terminate() {
    this.#channel.terminate(
      Object.assign(new Error("sessionrank worker terminated"), { name: "SessionrankError", code: "worker" }),
    );
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
