//! sessionrank in the browser: a thin wasm-bindgen surface over the engine in
//! `sessionrank_core` — the same `Reranker` the server and the tests run, so browser and
//! server scores differ only by floating-point order.
//!
//! ```text
//!  Reranker.load(manifestUrl) ─► fetch manifest, refuse another format version or a full bundle
//!                              ─► fetch its files (weights.bpk, categories.json) in parallel
//!                              ─► ModelBundle::from_parts (every sha256) ─► core::Reranker (CPU)
//!  observe(event)             ─► session (memory, mirrored to sessionStorage per model version)
//!  rerank(candidates, rules?) ─► core prepare (features, forward) ─► into_data_async ─► finish
//!                              (the shop's rules: `sessionrank_core::rules`, as natively)
//! ```
//!
//! * [`reranker`]: the `Reranker` class;
//! * [`backend`]: its engines (the CPU one, the WebGPU one while it is chosen) and the
//!   fallback; [`choice`]: `options.backend` and the warm-up report; `gpu` (WebGPU build):
//!   the browser's GPU device and the warm-up race; [`score`]: one call on an engine;
//! * [`shapes`]: the JS shapes of events, candidates and results, checked on the way in;
//!   `bulk`: a re-rank's candidates in and ranking out, one JS call each (`js/bulk.js`);
//!   `js`: the conversions every module shares;
//! * [`storage`]: the session and its `sessionStorage` mirror;
//! * [`error`]: every failure as a `SessionrankError` with a `code`.
//!
//! Item vectors: the package loads **browser bundles** (`<version>/browser/manifest.json`:
//! the model without its catalog-sized tables, see `sessionrank_core::browser`), so items
//! arrive as vectors with the candidate page (`{itemId, vector}`, computed by the server's
//! full model: `/v1/candidates`, `/v1/models/{version}/vectors`), as in EdgeRec. [`vectors`]
//! remembers them, so a click observed by id gets its item's vector. An item without a vector
//! is encoded here from its `category` and `price` (item text needs the tokenizer, which this
//! package leaves out to stay within its byte budget); without those it gets the model's
//! "unknown item" vector. Nothing about the session leaves the page.

pub mod backend;
mod bulk;
pub mod choice;
pub mod error;
mod fetch;
#[cfg(feature = "webgpu")]
pub mod gpu;
mod js;
pub mod reranker;
pub mod score;
pub mod shapes;
pub mod storage;
pub mod vectors;
mod warm;

pub use error::{ERROR_NAME, ErrorCode};
pub use reranker::Reranker;

use wasm_bindgen::prelude::*;

/// Panics (bugs, never bad input) print their message to the console instead of
/// "unreachable executed".
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** `click` and `view` are the same kind to the model. */
export type EventKind = "click" | "view" | "add_to_cart" | "purchase";

/** What the shop knows about an item; used for items the bundle does not know. */
export interface ItemContent {
  text?: string;
  category?: string | number;
  /** Price in the shop's currency (→ log2 price level, as in training). */
  price?: number;
  /** Price level 0..15 directly (wins over `price`). */
  priceLevel?: number;
}

export interface SessionEvent {
  itemId: string | number;
  /** Default `"view"`. */
  kind?: EventKind;
  /** Milliseconds since the epoch; `Date.now()` when absent; `null`: time unknown. */
  timestamp?: number | null;
  content?: ItemContent;
  /** The item's vector (`d_model` numbers); when absent, the one a listed candidate had. */
  vector?: number[] | Float32Array;
}

/**
 * A candidate: its id, or its id with the vector the server computed for it (`/v1/candidates`,
 * `/v1/models/{version}/vectors`) and/or content. A bare id uses the vector an earlier call
 * gave that id, else the content tower on category and price, else the "unknown item" vector.
 */
export type CandidateInput =
  | string
  | number
  | {
      itemId: string | number;
      vector?: number[] | Float32Array;
      content?: ItemContent;
      /** `false`: the shop cannot sell it now; hidden unless `rules.hideUnavailable` is false. */
      available?: boolean;
    };

/**
 * A shop's business rules for one re-rank; every field optional, `{}` changes nothing.
 * They apply in one order: hide (excluded ids, unavailable candidates) → relevance (`blend`
 * of the model and the upstream order, each scaled to 0..1 over the list) → boost and bury →
 * pins → each remaining slot from the first: the displacement limit (hard), the category
 * cap (best effort), diversity. Rules that cannot be met reject with `invalid_rules`.
 */
export interface Rules {
  /** Item id → slot (0 = first). A slot past the end of the list is an error. */
  pins?: Record<string, number>;
  /** Ids never to show. */
  exclude?: string[];
  /** Hide candidates passed with `available: false` (default true). */
  hideUnavailable?: boolean;
  /** Item id → strength in [0, 1]: adds strength × 0.5 to a relevance that spans 0..1. */
  boost?: Record<string, number>;
  /** Item id → strength in [0, 1]: subtracts strength × 0.5. */
  bury?: Record<string, number>;
  /** At most `max` items of one category among the first `top` (default 10); pins count. */
  categoryCap?: { max: number; top?: number };
  /** λ in [0, 1] of maximal marginal relevance over the item vectors (0 = relevance alone). */
  diversity?: number;
  /** Slots diversity shapes, from the first (default 20). */
  diversityDepth?: number;
  /** No item lands more than this many places from its usual position (pins excepted). */
  maxDisplacement?: number | null;
  /** α in [0, 1]: 1 (default) = the model's order, 0 = the upstream order. */
  blend?: number;
}

/** What the rules did to an item; `{}` when nothing. */
export interface Effects {
  /** The slot the shop pinned it to (0 = first). */
  pinned?: number;
  boosted?: number;
  buried?: number;
  /** Diversity chose it over a more relevant item (`"up"`), or a different item over it. */
  diversity?: "up" | "down";
  /** The displacement limit placed it earlier (`"up"`) or kept it from rising (`"down"`). */
  held?: { toward: "up" | "down"; limit: number };
  /** The category cap moved it out of the first `top`. */
  capped?: { category: string; max: number; top: number };
}

/** A candidate the rules did not show. */
export interface HiddenItem {
  itemId: string;
  upstreamRank: number;
  reason: "excluded" | "unavailable";
}

export interface Because { itemId: string; weight: number }

export interface RankedItem {
  itemId: string;
  score: number;
  /** Position in the list passed to `rerank` (0 = first). */
  upstreamRank: number;
  /** Up to two session items most similar to this one ("because you viewed …"). */
  because: Because[];
  /** What the rules did to it. */
  effects: Effects;
  /** One short sentence (session items by id): "Because you viewed 12. Promoted by the shop." */
  explanation: string;
}

export interface Ranking {
  items: RankedItem[];
  /** False when the upstream order came back unchanged; `reason` says why. */
  personalised: boolean;
  reason: string | null;
  /** Candidates the rules hid, in upstream order. */
  hidden: HiddenItem[];
  /** The device that computed the scores (`"cpu"` also after a WebGPU failure; `reason` says so once). */
  backend: "cpu" | "webgpu";
  /** Time spent in `rerank`, in milliseconds (building the returned object not included). */
  millis: number;
  /**
   * Where `millis` went: argument conversion, features + forward pass, readback + sorting;
   * `rulesMs`: of those, reading and applying the rules (0 without rules).
   */
  timings: { inputMs: number; modelMs: number; finishMs: number; rulesMs: number };
}

export interface RerankerOptions {
  /** `"session"` (default): the session survives reloads of this tab; `"memory"`: it does not. */
  storage?: "session" | "memory";
  /**
   * `"auto"` (default): WebGPU where this build has it (sessionrank_webgpu.js), an adapter
   * exists and a warm-up race finds it faster than the CPU; the CPU otherwise. `"cpu"`: never
   * look for a GPU. `"webgpu"`: WebGPU or a `device` error (always one in the CPU-only build).
   */
  backend?: "auto" | "cpu" | "webgpu";
  /**
   * `true` (default): after loading, a few dozen re-ranks of a synthetic session run in idle
   * time, one per macrotask, so the engine's code is compiled and optimised before the
   * shopper's first click (that click then takes ~0.5 ms, not ~10). It costs ~50-100 ms of
   * one core once per page; `false` skips it (e.g. on battery saver).
   */
  warmUp?: boolean;
  /**
   * `load` only: the downloads `prefetchBundle(manifestUrl)` started before `init()` (the
   * same URL), read and checked as `load`'s own requests, so the bundle travels while the
   * module compiles. One prefetch serves one load.
   */
  prefetched?: import("./sessionrank-prefetch.js").PrefetchedBundle;
}

/** The backend choice: `reranker.warmup`, `await reranker.ready()`. */
export interface BackendReport {
  backend: "cpu" | "webgpu";
  /** Timed warm-up calls per backend (after one untimed call). */
  calls: number;
  /** Median warm-up call on each backend, when measured. */
  cpuMs: number | null;
  webgpuMs: number | null;
  /** Why WebGPU does not score, when it does not (no adapter, slower, failed at run time). */
  reason: string | null;
}

/** Where loading spent its time (milliseconds): `reranker.loadTimings`. */
export interface LoadTimings {
  /** Fetching the manifest, then its files in parallel (0 for `fromBytes`). */
  fetchMs: number;
  /** Checking every file's sha256. */
  verifyMs: number;
  /** Decoding the weights and building the CPU engine. */
  buildMs: number;
  /** The backend choice (the WebGPU build's warm-up race, when it runs). */
  chooseMs: number;
}

export type SessionrankErrorCode =
  | "network" | "http_status" | "checksum_mismatch" | "unsupported_format" | "missing_file"
  | "invalid_file" | "weights" | "invalid_config" | "tokenizer" | "invalid_input"
  | "invalid_rules" | "device";

/** Every error this package throws or rejects with. */
export interface SessionrankError extends Error {
  name: "SessionrankError";
  code: SessionrankErrorCode;
  /**
   * invalid_input: the argument at fault, e.g. `candidates[3].content.price`; invalid_rules:
   * the rule, e.g. `rules.pins.sku-7`.
   */
  field?: string;
  /** checksum_mismatch, missing_file, invalid_file: the bundle file. */
  file?: string;
  /** network, http_status: the URL. */
  url?: string;
  /** http_status: the HTTP status. */
  status?: number;
  /**
   * unsupported_format: what the manifest is (a format version number, or `"full"` for a
   * server bundle) and what this package reads (a version number, or `"browser"`).
   */
  found?: number | string;
  supported?: number | string;
}
"#;
