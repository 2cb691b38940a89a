//! sessionrank in the browser: a thin wasm-bindgen surface over the engine in
//! `sessionrank_core` — the same `Reranker` the server and the tests run, so browser and
//! server scores differ only by floating-point order.
//!
//! ```text
//!  Reranker.load(manifestUrl) ─► fetch manifest, refuse another format version
//!                              ─► fetch weights / tokenizer / items in parallel
//!                              ─► ModelBundle::from_parts (every sha256) ─► core::Reranker (CPU)
//!  observe(event)             ─► session (memory, mirrored to sessionStorage per model version)
//!  rerank(candidates)         ─► core prepare (features, forward) ─► into_data_async ─► finish
//! ```
//!
//! * [`reranker`]: the `Reranker` class;
//! * [`shapes`]: the JS shapes of events, candidates and results, checked on the way in;
//! * [`storage`]: the session and its `sessionStorage` mirror;
//! * [`error`]: every failure as a `SessionrankError` with a `code`.
//!
//! Item vectors: items the bundle knows use their id embedding plus the content stored in
//! `items.json`; items it does not know are encoded from the `content` the page passes
//! (text, category, price) by the same content tower; an unknown item without content gets
//! the model's "unknown item" vector. Nothing about the session leaves the page.

pub mod error;
mod fetch;
pub mod reranker;
pub mod shapes;
pub mod storage;

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
}

/** A candidate: its id, or its id with content. */
export type CandidateInput = string | number | { itemId: string | number; content?: ItemContent };

export interface Because { itemId: string; weight: number }

export interface RankedItem {
  itemId: string;
  score: number;
  /** Position in the list passed to `rerank` (0 = first). */
  upstreamRank: number;
  /** Up to two session items most similar to this one ("because you viewed …"). */
  because: Because[];
}

export interface Ranking {
  items: RankedItem[];
  /** False when the upstream order came back unchanged; `reason` says why. */
  personalised: boolean;
  reason: string | null;
  backend: "cpu";
  /** Time spent in `rerank`, in milliseconds (building the returned object not included). */
  millis: number;
  /** Where `millis` went: argument conversion, features + forward pass, readback + sorting. */
  timings: { inputMs: number; modelMs: number; finishMs: number };
}

export interface RerankerOptions {
  /** `"session"` (default): the session survives reloads of this tab; `"memory"`: it does not. */
  storage?: "session" | "memory";
}

export type SessionrankErrorCode =
  | "network" | "http_status" | "checksum_mismatch" | "unsupported_format" | "missing_file"
  | "invalid_file" | "weights" | "invalid_config" | "tokenizer" | "invalid_input" | "device";

/** Every error this package throws or rejects with. */
export interface SessionrankError extends Error {
  name: "SessionrankError";
  code: SessionrankErrorCode;
  /** invalid_input: the argument at fault, e.g. `candidates[3].content.price`. */
  field?: string;
  /** checksum_mismatch, missing_file, invalid_file: the bundle file. */
  file?: string;
  /** network, http_status: the URL. */
  url?: string;
  /** http_status: the HTTP status. */
  status?: number;
}
"#;
