// Types of sessionrank-client.js (the Worker wrapper, `sessionrank/worker`). Shapes are those
// of the main package.
import type {
  BackendReport,
  CandidateInput,
  Effects,
  HiddenItem,
  Ranking,
  Rules,
  SessionEvent,
  SessionrankError as PackageError,
  SessionrankErrorCode as PackageErrorCode,
} from "./sessionrank.js";

export type { CandidateInput, Effects, HiddenItem, Ranking, Rules, SessionEvent, BackendReport };

export interface BundleBytes {
  manifest: Uint8Array;
  files: Map<string, Uint8Array | ArrayBuffer> | Record<string, Uint8Array | ArrayBuffer>;
}

/** Every `code` a `SessionrankError` from the client or its worker can carry: the package's
 *  (raised in the worker), `not_loaded` (the worker got a call before "load"), and the
 *  client's own `timeout`, `terminated` and `worker` (the worker script failed). */
export type ClientErrorCode = PackageErrorCode | "not_loaded" | "timeout" | "terminated" | "worker";

/** What every call rejects with (the fields of the package's `SessionrankError`). */
export interface SessionrankError extends Omit<PackageError, "code"> {
  code: ClientErrorCode;
}

/** The worker's backend outcome, reported once after the first re-rank. */
export interface BackendStatus {
  backend: "cpu" | "webgpu";
  /** Why the CPU is used (no adapter, Save-Data, slower, a failure), or null. */
  reason: string | null;
  warmup: BackendReport | null;
}

export interface ClientOptions {
  /** Another worker script; default the package's own, found by the bundler. */
  workerUrl?: string | URL;
  /** A folder (a CDN path) serving `sessionrank_bg.wasm` and `sessionrank_webgpu_bg.wasm`;
   *  default: next to the JavaScript (where the bundler put them). */
  wasmBase?: string | URL;
  /** `"auto"` (default): try the WebGPU artefact after the first re-rank, except on Save-Data,
   *  a metered (cellular) connection or `navigator.deviceMemory` < 4; `"off"`: never download
   *  it; `"force"`: always try it, and swap whenever WebGPU works. */
  webgpu?: "auto" | "off" | "force";
  /** Milliseconds a call may take before it rejects with `code: "timeout"` (default 30000;
   *  0: no limit). The hung worker is stopped; the next call starts a fresh one with the same
   *  bundle and the session replayed. `load` itself is not limited. */
  timeout?: number;
  /** Where the session is kept: `"session"` (default; sessionStorage, survives reloads, dies
   *  with the tab), `"memory"` (this page only), `"none"` (nothing outside the worker). */
  storage?: "session" | "memory" | "none";
  /** `false`: events are dropped — nothing stored, no personalisation — until
   *  `grantConsent()`. Default true. */
  consent?: boolean;
  /** Called with the worker's backend outcome, once. */
  onStatus?: (status: BackendStatus) => void;
  /** Where a session carried to another model version gets its vectors, in one GET; default
   *  next to the manifest: `/v1/models/{version}/vectors?ids=a,b,c`. */
  vectorsUrl?: (version: string, ids: string[]) => string;
}

/** The vectors of a shop's own list (see `sessionrank-vectors.d.ts`). */
export { fetchVectors } from "./sessionrank-vectors.js";
export type { FetchVectorsOptions } from "./sessionrank-vectors.js";

export declare class RerankerClient {
  /** Start a module worker and load a bundle in it (a browser bundle's manifest URL,
   *  `/v1/models/<version>/browser/manifest.json`, or bytes). Rejects with a
   *  `SessionrankError`. */
  static load(source: string | BundleBytes, options?: ClientOptions): Promise<RerankerClient>;
  /** A client on a worker already started (or a function starting one, so a timeout can be
   *  recovered from); `load` is the usual way. */
  constructor(worker: Worker | (() => Worker));
  readonly modelVersion: string;
  /** The backend scoring now: `"cpu"` until the worker reports a swap to WebGPU. */
  readonly backend: "cpu" | "webgpu";
  /** Why the stored session, or some of its events, was discarded at load; null if none. */
  readonly discarded: string | null;
  /** The session carried over from another model version by the last load, or null. */
  readonly migrated: { from: string; events: number } | null;
  /** Move to another model version (after a publish) in the same worker, keeping the session:
   *  its events stay, their vectors are fetched from the new version in one request. `load`
   *  does the same with a session stored under an earlier version. */
  switchModel(source: string | BundleBytes): Promise<void>;
  /** Whether events are kept (see `ClientOptions.consent`). */
  readonly consented: boolean;
  /** The shopper agreed: events observed from now on are kept and personalise. */
  grantConsent(): void;
  /** With a browser bundle give each event the item's `vector` from the candidate page; it is
   *  kept in the stored session and replayed with it after a reload. Without consent, a no-op. */
  observe(event: SessionEvent): Promise<void>;
  /** Re-rank candidates (upstream order) under the shop's `rules` (optional; see `Rules`).
   *  Rejects with `invalid_input` for a bad list, `invalid_rules` for rules that are invalid
   *  or cannot be met (`field` names the rule). */
  rerank(candidates: CandidateInput[], rules?: Rules): Promise<Ranking>;
  /** The session so far, oldest first (a copy of what `observe` accepted); empty with
   *  `storage: "none"`. */
  session(): SessionEvent[];
  reset(): Promise<void>;
  /** Stop the worker: pending and later calls reject with `code: "terminated"`. */
  terminate(): void;
}
