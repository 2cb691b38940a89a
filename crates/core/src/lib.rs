//! sessionrank-core: the engine shared by the server, the browser package and the tests.
//!
//! * [`features`] turns items and sessions into model inputs (one code path for all);
//! * [`tokenizer`] is the item-text tokenizer trained on the catalog;
//! * [`bundle`] reads, verifies and writes versioned model bundles;
//! * [`reranker`] is the `Reranker` engine a storefront's click goes through;
//! * [`ranking`] holds what a call takes and gives, [`validate`] the checks on outside input,
//!   [`weights`] weights as bytes and tensors read back;
//! * [`rules`] applies a shop's business rules to an order, [`explain`] says why an item is
//!   where it is.

pub mod browser;
pub mod bundle;
mod error;
pub mod explain;
pub mod features;
pub mod ranking;
pub mod reranker;
pub mod rules;
mod similarity;
pub mod tokenizer;
pub mod validate;
pub mod weights;

pub use bundle::{
    BundleKind, FORMAT_VERSION, FeatureParams, FileEntry, ItemsFile, Manifest, ModelBundle,
};
pub use error::{CoreError, Result};
pub use explain::Effects;
pub use features::{EncodedEvent, EncodedItem, FeatureEncoder, ItemContent};
pub use ranking::{Because, Candidate, RankedItem, Ranking, SessionEvent};
pub use reranker::{Prepared, Reranker};
pub use rules::Rules;
pub use tokenizer::ItemTokenizer;

pub use sessionrank_data as data;
pub use sessionrank_model as model;
