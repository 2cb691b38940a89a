//! sessionrank-data: the session format, dataset importers, evaluation metrics, evaluation
//! protocols and non-neural baselines.
//!
//! This crate deliberately has no burn dependency: the evaluator and the baselines must be
//! usable (and testable) without the model, and the model's scorer plugs in through the
//! [`Scorer`] trait.
//!
//! * [`session`] — the one session format ([`Dataset`], [`Catalog`], [`Event`], …).
//! * [`import`] — importers for Diginetica (SR-GNN split and the metadata slice), Amazon Beauty,
//!   RetailRocket and RecBole atomic files.
//! * [`price`] — price → price level, the one rule training and serving share.
//! * [`split`] — train / validation / test splits and the cases of held-out sessions.
//! * [`hygiene`] — bot and scripted sessions taken out before retraining (poisoning).
//! * [`metrics`] — rank of the target and HR/MRR/NDCG, accumulated into [`RankingMetrics`];
//!   [`diversity`] — category coverage and intra-list diversity of a shown list.
//! * [`scorer`] — the [`Scorer`] trait every ranked thing implements.
//! * [`eval`] / [`sample`] — the full-ranking and the re-ranking protocols.
//! * [`baselines`] — popularity, item-kNN and session-kNN scorers; [`blend`] — a model mixed
//!   with session-kNN, its weight chosen on validation.

pub mod baselines;
pub mod blend;
pub mod diversity;
pub mod error;
pub mod eval;
pub mod hygiene;
pub mod import;
pub mod metrics;
mod par;
pub mod price;
pub mod sample;
pub mod scorer;
pub mod session;
pub mod split;

pub use error::{DataError, Result};
pub use metrics::{MetricAccumulator, RankingMetrics};
pub use price::{MAX_PRICE_LEVEL, price_level};
pub use scorer::{Scorer, UpstreamOrder};
pub use session::*;

use std::path::PathBuf;

/// Environment variable that overrides [`default_data_dir`].
pub const DATA_DIR_ENV: &str = "SESSIONRANK_DATA_DIR";

/// Where the real datasets live.
///
/// `$SESSIONRANK_DATA_DIR` when set (and non-empty); otherwise the first `shared/data` found
/// walking up from the working directory (CI checks out a fresh clone with the read-only
/// `shared/` directory beside it; `cargo test` runs tests in the package's directory, so
/// `<clone>/../shared/data` is found from every crate). The search is at run time on purpose:
/// a path baked in at compile time (`CARGO_MANIFEST_DIR`) goes stale when two checkouts share
/// one build cache, because cargo reuses the artefacts of a checkout at another path.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    cwd.ancestors()
        .map(|dir| dir.join("shared").join("data"))
        .find(|candidate| candidate.is_dir())
        .unwrap_or_else(|| cwd.join("../shared/data"))
}
