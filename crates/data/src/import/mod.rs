//! Dataset importers: each turns one public dataset's files into a split [`Dataset`].
//!
//! One file per source, because each source has its own quirks (RetailRocket's swapped header,
//! the duplicated rows of the Diginetica slice, Amazon Beauty's leave-one-out convention) and
//! those quirks are best documented next to the code that handles them. Every importer returns an
//! [`Imported`]: the dataset plus an [`ImportSummary`] that the CLI (`sessionrank import`) prints
//! so a human can check the counts against the dataset's README.

pub mod beauty;
pub mod diginetica;
pub mod diginetica_slice;
pub mod recbole;
pub mod retailrocket;

use crate::error::{DataError, Result};
use crate::session::{Dataset, EventKind};
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The split rules every importer shares (owned by [`crate::split`]).
pub use crate::split::{leave_one_out, prefix_cases};
pub use beauty::import_beauty;
pub use diginetica::{DigineticaOptions, import_diginetica};
pub use diginetica_slice::import_diginetica_slice;
pub use recbole::import_recbole;
pub use retailrocket::import_retailrocket;

/// A freshly imported dataset and the numbers that describe it.
#[derive(Debug, Clone)]
pub struct Imported {
    pub dataset: Dataset,
    pub summary: ImportSummary,
}

/// Counts a human checks against the dataset's documentation after an import.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImportSummary {
    /// Dataset name ([`Dataset::name`]).
    pub dataset: String,
    /// Catalog size.
    pub items: usize,
    /// Distinct leaf categories in the catalog.
    pub categories: usize,
    pub train_sessions: usize,
    /// Events in the training sessions.
    pub train_events: usize,
    pub test_cases: usize,
    pub valid_cases: usize,
    /// Events of every imported session (after de-duplication, before the split) by kind,
    /// indexed by `EventKind as usize`. For sources whose test split is given as prefixes
    /// (Diginetica SR-GNN) this counts the training sessions only.
    pub events_by_kind: [usize; EventKind::COUNT],
    /// Source-specific facts (raw row counts, duplicates dropped, split boundaries).
    pub notes: Vec<String>,
}

impl ImportSummary {
    /// The counts that can be read off a dataset; `events_by_kind` starts as the training
    /// events' kinds and importers that see more events overwrite it.
    pub fn of(dataset: &Dataset) -> Self {
        let mut events_by_kind = [0usize; EventKind::COUNT];
        for e in dataset.train.iter().flat_map(|s| s.events.iter()) {
            events_by_kind[e.kind as usize] += 1;
        }
        let categories: BTreeSet<&str> =
            dataset.catalog.items().iter().filter_map(|it| it.category.as_deref()).collect();
        Self {
            dataset: dataset.name.clone(),
            items: dataset.catalog.len(),
            categories: categories.len(),
            train_sessions: dataset.train.len(),
            train_events: dataset.train.iter().map(|s| s.events.len()).sum(),
            test_cases: dataset.test.len(),
            valid_cases: dataset.valid.len(),
            events_by_kind,
            notes: Vec::new(),
        }
    }
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "dataset         {}", self.dataset)?;
        writeln!(f, "items           {}", self.items)?;
        writeln!(f, "categories      {}", self.categories)?;
        writeln!(f, "train sessions  {}", self.train_sessions)?;
        writeln!(f, "train events    {}", self.train_events)?;
        writeln!(f, "valid cases     {}", self.valid_cases)?;
        writeln!(f, "test cases      {}", self.test_cases)?;
        writeln!(
            f,
            "events by kind  view {} / add_to_cart {} / purchase {}",
            self.events_by_kind[EventKind::View as usize],
            self.events_by_kind[EventKind::AddToCart as usize],
            self.events_by_kind[EventKind::Purchase as usize],
        )?;
        for note in &self.notes {
            writeln!(f, "note            {note}")?;
        }
        Ok(())
    }
}

/// Names accepted by [`import_named`], for help texts.
pub const DATASET_NAMES: &str =
    "diginetica, diginetica-slice, amazon-beauty, retailrocket, recbole:<dir>/<name>";

/// Import a dataset by its short name from the standard layout under `data_dir`
/// (see `shared/data/README.md`); `recbole:<path>` imports `<path>.inter` (+ `<path>.item`),
/// where a relative path is taken relative to `data_dir`.
pub fn import_named(name: &str, data_dir: &Path) -> Result<Imported> {
    match name {
        "diginetica" => {
            import_diginetica(&data_dir.join("diginetica"), &DigineticaOptions::default())
        }
        "diginetica-slice" => import_diginetica_slice(&data_dir.join("diginetica")),
        "amazon-beauty" | "beauty" => import_beauty(&data_dir.join("amazon-beauty")),
        "retailrocket" => import_retailrocket(&data_dir.join("retailrocket")),
        other => match other.strip_prefix("recbole:") {
            Some(path) => {
                let path = data_dir.join(path);
                let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                let stem =
                    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                import_recbole(&dir, &stem)
            }
            None => Err(DataError::UnknownDataset {
                name: other.to_string(),
                expected: DATASET_NAMES.to_string(),
            }),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers.
// ---------------------------------------------------------------------------------------------

/// Read a whole file as UTF-8, naming the file on failure.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|source| DataError::Io { path: path.to_path_buf(), source })
}

/// Lines with their 1-based numbers, a trailing `\r` removed (files written on Windows).
pub(crate) fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
}

/// Parse one field, turning a failure into a [`DataError::Parse`] that names file, line and
/// column.
pub(crate) fn parse_field<T: FromStr>(
    path: &Path,
    line: usize,
    column: &str,
    raw: &str,
) -> Result<T> {
    raw.trim().parse::<T>().map_err(|_| {
        DataError::parse(path, line, format!("column `{column}`: cannot parse `{raw}`"))
    })
}

/// A tab-separated header: column name → position.
pub(crate) struct Header {
    path: PathBuf,
    names: Vec<String>,
}

impl Header {
    pub(crate) fn new(path: &Path, line: &str) -> Self {
        Self {
            path: path.to_path_buf(),
            names: line.split('\t').map(|s| s.trim().to_string()).collect(),
        }
    }

    pub(crate) fn find(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    pub(crate) fn require(&self, name: &str) -> Result<usize> {
        self.find(name).ok_or_else(|| DataError::MissingColumn {
            path: self.path.clone(),
            column: name.to_string(),
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }
}

/// Split a tab-separated line into exactly `expected` fields, or say which line is malformed.
pub(crate) fn split_tabs<'a>(
    path: &Path,
    line_no: usize,
    line: &'a str,
    expected: usize,
) -> Result<Vec<&'a str>> {
    let fields: Vec<&str> = line.split('\t').collect();
    if fields.len() != expected {
        return Err(DataError::parse(
            path,
            line_no,
            format!("expected {expected} tab-separated fields, found {}", fields.len()),
        ));
    }
    Ok(fields)
}

/// Largest |seconds since the epoch| a timestamp may have (about 317,000 years): any two such
/// times subtract without overflow, which the time splits rely on.
const MAX_ABS_SECONDS: f64 = 1e13;

/// Seconds since the epoch from a timestamp that may be in milliseconds: values above 1e11
/// (year 5138 in seconds, 1973 in milliseconds) are taken as milliseconds. `None` for a value
/// that is not finite (`1e400` parses as infinity) or lies beyond [`MAX_ABS_SECONDS`].
fn to_seconds(t: f64) -> Option<i64> {
    let s = if t.abs() > 1e11 { (t / 1000.0).floor() } else { t.floor() };
    (s.is_finite() && s.abs() <= MAX_ABS_SECONDS).then_some(s as i64)
}

/// A timestamp field (Unix seconds or milliseconds) as seconds since the epoch, or an error
/// naming the line and column.
pub(crate) fn parse_time(path: &Path, line: usize, column: &str, raw: &str) -> Result<i64> {
    to_seconds(parse_field::<f64>(path, line, column, raw)?).ok_or_else(|| {
        DataError::parse(
            path,
            line,
            format!(
                "column `{column}`: `{}` is not a Unix time in seconds or milliseconds",
                raw.trim()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_name() {
        let err = import_named("nope", Path::new("/nonexistent")).err();
        assert!(matches!(err, Some(DataError::UnknownDataset { .. })));
    }

    /// Every importer's times (RetailRocket's and the Diginetica slice's `Time`, RecBole's
    /// `timestamp`) go through `parse_time`: seconds or milliseconds, and nothing a time split
    /// cannot subtract.
    #[test]
    fn times_are_seconds_or_milliseconds_within_any_calendar() {
        let p = Path::new("shop.inter");
        let t = |raw: &str| parse_time(p, 7, "timestamp", raw);
        assert_eq!(t("1433221400").ok(), Some(1_433_221_400));
        assert_eq!(t("1433221400999.0").ok(), Some(1_433_221_400));
        assert_eq!(t(" -3.5 ").ok(), Some(-4));
        for bad in ["1e400", "-1e400", "NaN", "1e17"] {
            let msg = t(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                msg.contains("shop.inter:7:") && msg.contains("not a Unix time"),
                "{bad}: {msg}"
            );
        }
    }
}
