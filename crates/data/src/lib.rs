//! sessionrank-data: the session format, dataset importers, evaluation metrics, evaluation
//! protocols and non-neural baselines.
//!
//! This crate deliberately has no burn dependency: the evaluator and the baselines must be
//! usable (and testable) without the model, and the model's scorer plugs in through the
//! [`eval::Scorer`] trait.
//!
//! * [`session`] — the one session format ([`Dataset`], [`Catalog`], [`Event`], …).
//! * [`import`] — importers for Diginetica (SR-GNN split and the metadata slice), Amazon Beauty,
//!   RetailRocket and RecBole atomic files.
//! * [`metrics`] — rank of the target and HR/MRR/NDCG, accumulated into [`RankingMetrics`].
//! * [`eval`] / [`sample`] — the full-ranking and the re-ranking protocols.
//! * [`baselines`] — popularity, item-kNN and session-kNN scorers.

pub mod baselines;
pub mod error;
pub mod eval;
pub mod import;
pub mod metrics;
mod par;
pub mod sample;
pub mod session;

pub use error::{DataError, Result};
pub use metrics::{MetricAccumulator, RankingMetrics};
pub use session::*;

use std::path::PathBuf;

/// Environment variable that overrides [`default_data_dir`].
pub const DATA_DIR_ENV: &str = "SESSIONRANK_DATA_DIR";

/// Where the real datasets live.
///
/// `$SESSIONRANK_DATA_DIR` when set (and non-empty); otherwise `<workspace root>/../shared/data`,
/// because CI checks out a fresh clone with the read-only `shared/` directory beside it, so a
/// path relative to the crate's manifest works both there and in a developer checkout.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    // CARGO_MANIFEST_DIR = <workspace>/crates/data; strip the two components instead of joining
    // `../..` so the path prints cleanly in messages.
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest
        .parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../.."));
    match workspace.parent() {
        Some(parent) => parent.join("shared").join("data"),
        None => workspace.join("../shared/data"),
    }
}
