//! The sessionrank model: one burn model, trained on the server and run unchanged in the
//! shopper's browser.
//!
//! ```text
//!  item features ──► ItemEncoder ──► item vectors [n, d] ─┬──────────────────────────┐
//!  (id, text tokens, category, price level)               │                          │
//!                                                          ▼                          ▼
//!  session events (item row, kind, time gap) ──► SessionEncoder (causal Transformer) ─► h
//!                                                                                     │
//!  candidates (item rows, upstream rank) ─────────────────────────► ListScorer(h, v_c, rank)
//! ```
//!
//! Everything here is backend-agnostic: tensors carry no backend type and the caller picks a
//! `burn::tensor::Device` (`Device::flex()` on the CPU, `Device::wgpu(..)` on a GPU or WebGPU).
//! A larger teacher and a browser-sized student are two [`ModelConfig`]s of the same code.
//!
//! Index conventions (stated once, used everywhere):
//! * item feature rows: row `0` is the padding/"no item" row; real items start at `1`;
//! * item ids (the id-embedding index): `0` = unknown to the model, so a new item's vector
//!   comes from its content alone; catalog item `i` has id `i + 1`;
//! * token id `0` is padding; category `0` and price level `0` mean "unknown";
//! * boolean masks follow burn: `true` = masked out.

mod config;
mod fused;
mod fused_scorer;
mod input;
mod item;
mod model;
mod scorer;
mod session;

pub use config::ModelConfig;
pub use fused::{EncoderCache, FusedSessionEncoder, Unfusable};
pub use fused_scorer::FusedScorer;
pub use input::{CandidateInput, ItemFeatures, SessionInput};
pub use item::ItemEncoder;
pub use model::{SessionRankModel, l2_normalize};
pub use scorer::ListScorer;
pub use session::SessionEncoder;

/// Number of time-gap buckets (bucket 0 = unknown gap; see [`time_gap_bucket`]).
pub const TIME_GAP_BUCKETS: usize = 18;

/// Bucket of the time between two events: `0` when unknown, else `1 + floor(log2(1 + s))`
/// capped, so gaps of 0 s, 1 s, 3 s, 7 s, … 18 h fall into distinct buckets. Log buckets
/// because the difference between 2 s and 30 s matters, between 3 h and 4 h not.
pub fn time_gap_bucket(gap_seconds: Option<i64>) -> usize {
    match gap_seconds {
        None => 0,
        Some(s) => {
            let s = s.max(0) as u64;
            let b = 64 - (s + 1).leading_zeros() as usize; // 1 + floor(log2(s + 1))
            b.min(TIME_GAP_BUCKETS - 1)
        }
    }
}

/// Number of event kinds the model embeds (view, add-to-cart, purchase) plus padding.
pub const EVENT_KINDS: usize = 4;

#[cfg(test)]
mod tests;
