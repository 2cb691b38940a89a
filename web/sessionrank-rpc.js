// @ts-check
// Requests and responses over postMessage: the one implementation of the protocol that
// sessionrank-worker.js answers, used by the page's client (sessionrank-client.js) and by the
// CPU worker's channel to its WebGPU worker.
//
//   request   { id, op, args }
//   response  { id, ok: true, result } | { id, ok: false, error: { name, message, code, … } }
//
// Every request gets a fresh id and is answered once with it, so concurrent calls never
// resolve each other's promises; a message with no pending id (the worker's unsolicited
// `{ status }`) is not a response and is left alone.

/**
 * @typedef {import("./pkg/sessionrank.js").BackendReport} BackendReport
 * @typedef {import("./pkg/sessionrank.js").CandidateInput} CandidateInput
 * @typedef {import("./pkg/sessionrank.js").Ranking} Ranking
 * @typedef {import("./pkg/sessionrank.js").Rules} Rules
 * @typedef {import("./pkg/sessionrank.js").SessionEvent} SessionEvent
 */

/**
 * A bundle as bytes (`Reranker.fromBytes`).
 * @typedef {object} BundleBytes
 * @property {Uint8Array} manifest
 * @property {Map<string, Uint8Array | ArrayBuffer> | Record<string, Uint8Array | ArrayBuffer>} files
 */

/**
 * A ranking as it crosses postMessage: `order` (the upstream rank of each result, best first)
 * and `scores` are transferred, not copied; the page already has the candidates' ids. The
 * per-item `because`, `effects` and `explanation` travel as arrays in the same order.
 * @typedef {Omit<Ranking, "items"> & {
 *   order: Uint32Array, scores: Float32Array, because: Ranking["items"][number]["because"][],
 *   effects: Ranking["items"][number]["effects"][], explanation: string[]
 * }} PackedRanking
 */

/**
 * The ops sessionrank-worker.js answers: each one's `args` and `result`.
 * @typedef {object} Protocol
 * @property {{ args: ({ manifestUrl: string } | BundleBytes) & LoadOptions, result: Loaded }} load
 * @property {{ args: { event: SessionEvent }, result: null }} observe
 * @property {{ args: { events: SessionEvent[] }, result: Restored }} restore
 *   replays a stored session
 * @property {{ args: { candidates: CandidateInput[], known?: number[], rules?: Rules }, result: PackedRanking }}
 *   rerank (`rules`: the shop's business rules, as the package's `rerank` takes them;
 *   `known`: candidates sent without the vector the worker was sent before for that item,
 *   which it puts back, or answers `vectors_missing`)
 * @property {{ args: {}, result: null }} reset
 */

/**
 * What the page decided for the worker (sessionrank-client.js `ClientOptions`).
 * @typedef {object} LoadOptions
 * @property {"auto" | "off" | "force"} [webgpu] whether to try the WebGPU artefact
 * @property {string} [webgpuReason] why not (reported in the worker's status)
 * @property {string} [wasmBase] the folder (a CDN path) of the two `_bg.wasm` files
 */

/**
 * `restore`'s result: the events kept, and each refused one's index and reason.
 * @typedef {{ sessionLength: number, refused: { index: number, reason: string }[] }} Restored
 */

/**
 * `load`'s result; the WebGPU worker adds its backend choice.
 * @typedef {object} Loaded
 * @property {string} modelVersion
 * @property {string} storageKey
 * @property {"cpu" | "webgpu"} [backend]
 * @property {BackendReport} [warmup]
 */

/** @typedef {keyof Protocol} Op */

/**
 * An error as it crosses postMessage: an `Error`'s own fields are lost in a structured clone,
 * so they travel copied out.
 * @typedef {object} PlainError
 * @property {string} name
 * @property {string} message
 * @property {string} [code]
 * @property {string} [field]
 * @property {string} [file]
 * @property {string} [url]
 * @property {number} [status]
 * @property {number | string} [found]
 * @property {number | string} [supported]
 */

/** @typedef {{ id: number, op: Op, args: unknown }} Request */

/**
 * @typedef {{ id: number, ok: true, result: unknown }
 *   | { id: number, ok: false, error: PlainError }} Response
 */

/**
 * What an op's handler resolves to: the result, and the buffers to transfer, not copy.
 * @template T
 * @typedef {{ result: T, transfer?: Transferable[] }} Answer
 */

/**
 * The worker's handler of every op.
 * @typedef {{ [K in Op]: (args: Protocol[K]["args"]) => Promise<Answer<Protocol[K]["result"]>> }}
 *   Handlers
 */

/** The fields of a `SessionrankError` besides `name` and `message`. */
const ERROR_FIELDS = /** @type {const} */ (
  ["code", "field", "file", "url", "status", "found", "supported"]
);

/**
 * The requesting side of a worker: `call(op, args)` posts a request and resolves with the
 * result (or rejects with the error) answered under its id.
 */
export class Channel {
  /** @type {Worker} */
  #worker;
  /** @type {Map<number, { resolve: (result: any) => void, reject: (error: Error) => void }>} */
  #pending = new Map();
  #nextId = 1;

  /**
   * @param {Worker} worker
   * @param {(message: string | undefined) => Error} failure the error pending calls reject
   *   with when the worker fails (an error thrown in it, a message it cannot read)
   */
  constructor(worker, failure) {
    this.#worker = worker;
    worker.onmessage = ({ data }) => {
      const call = this.#pending.get(data?.id);
      if (!call) return;
      this.#pending.delete(data.id);
      if (data.ok) call.resolve(data.result);
      else call.reject(toError(data.error));
    };
    /** @param {Event} event an `ErrorEvent`, or a `MessageEvent` (no message) */
    const fail = (event) => this.#rejectAll(failure(/** @type {ErrorEvent} */ (event).message));
    worker.onerror = fail;
    worker.onmessageerror = fail;
  }

  /**
   * Send `op` with `args`; resolves with the worker's result.
   * @template {Op} K
   * @param {K} op
   * @param {Protocol[K]["args"]} args
   * @returns {Promise<Protocol[K]["result"]>}
   */
  call(op, args) {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, op, args });
    });
  }

  /**
   * Stop the worker; calls still pending reject with `error`.
   * @param {Error} error
   */
  terminate(error) {
    this.#worker.terminate();
    this.#rejectAll(error);
  }

  /** @param {Error} error */
  #rejectAll(error) {
    for (const call of this.#pending.values()) call.reject(error);
    this.#pending.clear();
  }
}

/**
 * The answering side: run `handlers[op](args)` for one request and post its response;
 * whatever it throws is posted as an `{ ok: false, error }` response.
 * @param {unknown} request
 * @param {Handlers} handlers
 * @param {(response: Response, transfer: Transferable[]) => void} post
 */
export async function answer(request, handlers, post) {
  const { id, op, args } = /** @type {Partial<Request>} */ (request ?? {});
  try {
    const handler = typeof op === "string" && Object.hasOwn(handlers, op)
      ? /** @type {(args: unknown) => Promise<Answer<unknown>>} */ (handlers[op])
      : null;
    if (!handler) throw Object.assign(new Error(`unknown op ${op}`), { code: "invalid_input" });
    const { result, transfer } = await handler(args ?? {});
    post({ id: /** @type {number} */ (id), ok: true, result }, transfer ?? []);
  } catch (e) {
    post({ id: /** @type {number} */ (id), ok: false, error: plainError(e) }, []);
  }
}

/**
 * The fields of a thrown value that survive postMessage.
 * @param {any} e
 * @returns {PlainError}
 */
function plainError(e) {
  /** @type {Record<string, unknown>} */
  const out = { name: e?.name ?? "Error", message: String(e?.message ?? e) };
  for (const k of ERROR_FIELDS) {
    if (e && e[k] !== undefined) out[k] = e[k];
  }
  return /** @type {PlainError} */ (out);
}

/**
 * A `PlainError` back as an `Error` with its fields.
 * @param {PlainError} plain
 * @returns {Error & Partial<PlainError>}
 */
function toError(plain) {
  return Object.assign(new Error(plain.message), plain);
}
