//! Diginetica (CIKM Cup 2016), SR-GNN preprocessing — the split most session papers report on.
//!
//! Files under `<dir>/srgnn/`:
//! * `item_category.tsv` — `item_id<TAB>category` for every item (1..43097). It defines the
//!   catalog, so that items which only ever appear as test targets still have an index.
//! * `train_sessions.txt` — one session per line, item ids separated by spaces, chronological.
//! * `test_prefixes.tsv` — `prefix<TAB>next_item`, the 60,858 published test cases.
//!
//! The external item id is the SR-GNN item number as a string; the catalog holds the items in
//! ascending id order, so `ItemIdx == id - 1` for this dataset. Item text is empty: the SR-GNN
//! ids cannot be joined back to titles or prices (use [`super::diginetica_slice`] for those).

use super::{ImportSummary, Imported, numbered_lines, parse_field, read_text, split_tabs};
use crate::error::{DataError, Result};
use crate::session::{Catalog, Dataset, DatasetKind, Event, Item, ItemIdx, Session, TestCase};
use crate::split::{cases_of, recent_count};
use std::path::Path;

/// How to cut the SR-GNN training sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigineticaOptions {
    /// Remove the sessions used for validation from `train` (the default). Validation then
    /// asks about sessions the model never saw, from the days just before the test week, as
    /// the test does: early stopping and every choice made on it track the test's kind of
    /// error. Off, validation asks about prefixes of training sessions and measures
    /// memorisation — it kept rising while the test fell (BENCHMARKS.md, Diginetica runs).
    pub holdout_valid: bool,
    /// Keep only the most recent `n` training sessions (the tail of the chronological file, as
    /// the "1/64" SR-GNN subsets do), for quick experiments.
    pub max_train_sessions: Option<usize>,
}

impl Default for DigineticaOptions {
    fn default() -> Self {
        Self { holdout_valid: true, max_train_sessions: None }
    }
}

/// Share of the (most recent) training sessions that become validation prefixes: 9,334 of
/// 186,670 sessions, about the last 7 of the training period's ~145 days at an even rate —
/// the length of the test week.
pub const VALID_FRACTION: f64 = 0.05;

/// Import the SR-GNN split from `dir` (the `diginetica/` directory that contains `srgnn/`).
///
/// Validation: every prefix of the last 5% of the training sessions (they are chronological,
/// so these are the closest in time to the test week). Held out of `train` (the default), they
/// are cut as SR-GNN cut its test sessions: clicks on items that no training session has are
/// dropped, then every prefix of what is left with at least two clicks is a case.
pub fn import_diginetica(dir: &Path, options: &DigineticaOptions) -> Result<Imported> {
    let srgnn = dir.join("srgnn");
    let cat_path = srgnn.join("item_category.tsv");
    let train_path = srgnn.join("train_sessions.txt");
    let test_path = srgnn.join("test_prefixes.tsv");

    // Catalog: items sorted by numeric id so that index order is id order.
    let text = read_text(&cat_path)?;
    let mut rows: Vec<(u64, String)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (line_no, line) in numbered_lines(&text) {
        if line.trim().is_empty() {
            continue;
        }
        let f = split_tabs(&cat_path, line_no, line, 2)?;
        let id: u64 = parse_field(&cat_path, line_no, "item_id", f[0])?;
        if !seen.insert(id) {
            return Err(DataError::parse(&cat_path, line_no, format!("item id {id} listed twice")));
        }
        rows.push((id, f[1].trim().to_string()));
    }
    if rows.is_empty() {
        return Err(DataError::Empty { path: cat_path, what: "item list".into() });
    }
    rows.sort_by_key(|r| r.0);
    let mut catalog = Catalog::new();
    for (id, category) in rows {
        catalog.upsert(Item {
            id: id.to_string(),
            text: String::new(),
            category: Some(category),
            price_level: None,
        });
    }

    // Training sessions.
    let text = read_text(&train_path)?;
    let mut train: Vec<Session> = Vec::new();
    for (line_no, line) in numbered_lines(&text) {
        if line.trim().is_empty() {
            continue;
        }
        let events = parse_items(&train_path, line_no, line, &catalog)?
            .into_iter()
            .map(Event::view)
            .collect();
        train.push(Session { id: format!("train-{line_no}"), events });
    }
    if train.is_empty() {
        return Err(DataError::Empty { path: train_path, what: "training sessions".into() });
    }
    let total_sessions = train.len();
    if let Some(max) = options.max_train_sessions
        && train.len() > max
    {
        train.drain(..train.len() - max);
    }

    // Validation prefixes from the most recent sessions.
    let n_valid = recent_count(train.len(), VALID_FRACTION, 0);
    let first_valid = train.len() - n_valid;
    let valid = if options.holdout_valid {
        let held = train.split_off(first_valid);
        let mut trained = vec![false; catalog.len()];
        for e in train.iter().flat_map(|s| &s.events) {
            trained[e.item as usize] = true;
        }
        let seen: Vec<Session> = held
            .into_iter()
            .map(|s| Session {
                events: s.events.into_iter().filter(|e| trained[e.item as usize]).collect(),
                ..s
            })
            .collect();
        cases_of(&seen, |_| true)
    } else {
        cases_of(&train[first_valid..], |_| true)
    };

    // Test prefixes.
    let text = read_text(&test_path)?;
    let mut test = Vec::new();
    for (line_no, line) in numbered_lines(&text) {
        if line.trim().is_empty() {
            continue;
        }
        let f = split_tabs(&test_path, line_no, line, 2)?;
        let prefix: Vec<Event> = parse_items(&test_path, line_no, f[0], &catalog)?
            .into_iter()
            .map(Event::view)
            .collect();
        let targets = parse_items(&test_path, line_no, f[1], &catalog)?;
        let [target] = targets[..] else {
            return Err(DataError::parse(&test_path, line_no, "expected exactly one target item"));
        };
        test.push(TestCase { prefix, target });
    }

    let dataset = Dataset {
        name: "diginetica".into(),
        kind: DatasetKind::Sessions,
        catalog,
        train,
        valid,
        test,
    };
    let mut summary = ImportSummary::of(&dataset);
    summary.notes.push(format!(
        "{total_sessions} sessions in {}; validation = every prefix of the last {n_valid} ({}held out of train)",
        train_path.display(),
        if options.holdout_valid { "" } else { "not " }
    ));
    Ok(Imported { dataset, summary })
}

/// Space-separated item ids → catalog indices; an empty or unknown id is an error on that line.
fn parse_items(
    path: &Path,
    line_no: usize,
    field: &str,
    catalog: &Catalog,
) -> Result<Vec<ItemIdx>> {
    let mut out = Vec::new();
    for tok in field.split_ascii_whitespace() {
        // Validate the number first so that "abc" is a parse error, not an unknown item.
        let _: u64 = parse_field(path, line_no, "item_id", tok)?;
        let idx = catalog.lookup(tok).ok_or_else(|| DataError::UnknownItem {
            path: path.to_path_buf(),
            line: line_no,
            id: tok.to_string(),
        })?;
        out.push(idx);
    }
    if out.is_empty() {
        return Err(DataError::parse(path, line_no, "no item ids"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(dir: &Path, cats: &str, train: &str, test: &str) {
        let s = dir.join("srgnn");
        fs::create_dir_all(&s).unwrap_or_default();
        fs::write(s.join("item_category.tsv"), cats).unwrap_or_default();
        fs::write(s.join("train_sessions.txt"), train).unwrap_or_default();
        fs::write(s.join("test_prefixes.tsv"), test).unwrap_or_default();
    }

    #[test]
    fn small_split() -> Result<()> {
        let tmp =
            tempfile::tempdir().map_err(|e| DataError::Io { path: "tmp".into(), source: e })?;
        write(tmp.path(), "2\t7\n1\t7\n3\t8\n", "1 2\n2 3 1\n", "1 2\t3\n1\t2\n");
        let imp = import_diginetica(tmp.path(), &DigineticaOptions::default())?;
        let d = &imp.dataset;
        assert_eq!(d.catalog.len(), 3);
        assert_eq!(d.catalog.lookup("1"), Some(0));
        assert_eq!(d.catalog.lookup("3"), Some(2));
        assert_eq!(d.train.len(), 2);
        assert_eq!(d.test.len(), 2);
        assert_eq!(d.test[0].target, 2);
        // 5% of 2 sessions rounds to 0.
        assert_eq!(d.valid.len(), 0);
        assert_eq!(imp.summary.categories, 2);
        Ok(())
    }

    /// Held-out validation sessions leave `train`, and lose the clicks on items no remaining
    /// training session has (as SR-GNN's test sessions did); kept in, they are not filtered.
    #[test]
    fn validation_is_held_out_and_cut_like_the_test() -> Result<()> {
        let tmp =
            tempfile::tempdir().map_err(|e| DataError::Io { path: "tmp".into(), source: e })?;
        // 20 sessions → the last one (5%) validates; item 4 occurs only in it.
        let train = "1 2\n".repeat(19) + "1 4 2 3\n";
        write(tmp.path(), "1\t7\n2\t7\n3\t8\n4\t8\n", &train, "1\t2\n");
        let held = import_diginetica(tmp.path(), &DigineticaOptions::default())?.dataset;
        assert_eq!(held.train.len(), 19);
        // 1 2 3 minus the unseen 3 (only in the held-out session) and 4 → "1 2": one case.
        let targets: Vec<ItemIdx> = held.valid.iter().map(|c| c.target).collect();
        assert_eq!(targets, vec![1]);
        assert_eq!(held.valid[0].prefix.iter().map(|e| e.item).collect::<Vec<_>>(), vec![0]);
        let kept = DigineticaOptions { holdout_valid: false, ..DigineticaOptions::default() };
        let kept = import_diginetica(tmp.path(), &kept)?.dataset;
        assert_eq!(kept.train.len(), 20);
        assert_eq!(kept.valid.len(), 3);
        Ok(())
    }

    #[test]
    fn unknown_test_item_names_file_and_line() -> Result<()> {
        let tmp =
            tempfile::tempdir().map_err(|e| DataError::Io { path: "tmp".into(), source: e })?;
        write(tmp.path(), "1\t7\n2\t7\n", "1 2\n", "1\t2\n1 2\t99\n");
        match import_diginetica(tmp.path(), &DigineticaOptions::default()) {
            Err(DataError::UnknownItem { path, line, id }) => {
                assert!(path.ends_with("test_prefixes.tsv"));
                assert_eq!(line, 2);
                assert_eq!(id, "99");
            }
            other => panic!("expected UnknownItem, got {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn malformed_train_line() -> Result<()> {
        let tmp =
            tempfile::tempdir().map_err(|e| DataError::Io { path: "tmp".into(), source: e })?;
        write(tmp.path(), "1\t7\n2\t7\n", "1 2\n2 x\n", "1\t2\n");
        let err = import_diginetica(tmp.path(), &DigineticaOptions::default()).err();
        let msg = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("train_sessions.txt:2:"), "{msg}");
        Ok(())
    }
}
