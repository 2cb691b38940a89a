//! The one error type of the crate.
//!
//! Every error that comes from reading a file names the file, and — when a particular line is at
//! fault — the 1-based line number, printed as `path:line` so that an editor or a terminal can
//! jump straight to it. Importers never panic on the contents of a file: a malformed dataset is
//! an ordinary, reportable condition, not a bug.

use std::path::PathBuf;

/// Everything that can go wrong while importing or checking a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A line does not have the expected shape (wrong number of fields, a number that is not one,
    /// an unknown event type …). `line` is 1-based, as editors count.
    #[error("{}:{line}: {message}", path.display())]
    Parse { path: PathBuf, line: usize, message: String },

    /// The header of a tabular file lacks a column the importer needs.
    #[error("{}: missing column `{column}`", path.display())]
    MissingColumn { path: PathBuf, column: String },

    /// An item id that the catalog does not know (e.g. a test file naming an item that no
    /// metadata or training file introduced).
    #[error("{}:{line}: unknown item id `{id}`", path.display())]
    UnknownItem { path: PathBuf, line: usize, id: String },

    /// A file (or the part of it an importer needs) holds nothing usable.
    #[error("{}: {what} is empty", path.display())]
    Empty { path: PathBuf, what: String },

    /// A request that names no dataset this crate can import.
    #[error("unknown dataset `{name}` (expected one of: {expected})")]
    UnknownDataset { name: String, expected: String },
}

impl DataError {
    /// Shorthand for [`DataError::Parse`].
    pub fn parse(path: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> Self {
        Self::Parse { path: path.into(), line, message: message.into() }
    }
}

/// Result with [`DataError`].
pub type Result<T> = std::result::Result<T, DataError>;
