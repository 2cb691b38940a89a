//! Diginetica slice with item metadata — the only Diginetica data here with titles and prices.
//!
//! File: `<dir>/slice-with-metadata/diginetica_train_valid.txt`, tab-separated with header
//! `SessionId ItemId Time CatId Price Name SearchTokens`. `Price` is already a log2 price level
//! (0..13) and `Name` the product title as comma-separated hashed word ids. Some rows are
//! repeated by the join that produced the file; consecutive identical `(session, item, time)`
//! rows are collapsed into one event (the time is a day, so a genuine repeat view of the same
//! item on the same day, directly after the first, is collapsed as well — unavoidable, and rare).
//!
//! It covers 3 days and 4,522 sessions: right for exercising the text + price feature path,
//! too small for benchmark claims.
//!
//! Split (by time, as the data has no published split): sessions are ordered by the time of
//! their first event (file order among equal times — the time is day-granular); the last 20%
//! are test sessions, the last 10% of the rest are validation sessions (held out of `train`),
//! and the remainder trains. Test and validation cases are every prefix whose target is an item
//! seen in training (an unseen target cannot be ranked by an id-based model, and the SR-GNN
//! preprocessing that the literature uses drops them the same way).

use super::{
    Header, ImportSummary, Imported, numbered_lines, parse_field, parse_time, read_text, split_tabs,
};
use crate::error::{DataError, Result};
use crate::price::cap_price_level;
use crate::session::{Catalog, Dataset, DatasetKind, Event, EventKind, Item, Session};
use crate::split::{RecentSplit, cases_of, split_recent};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Share of sessions (the most recent) used for test.
pub const TEST_FRACTION: f64 = 0.2;
/// Share of the remaining sessions (the most recent) used for validation.
pub const VALID_FRACTION: f64 = 0.1;

/// Import the slice from `dir` (the `diginetica/` directory that contains
/// `slice-with-metadata/`).
pub fn import_diginetica_slice(dir: &Path) -> Result<Imported> {
    let path = dir.join("slice-with-metadata").join("diginetica_train_valid.txt");
    let text = read_text(&path)?;
    let mut lines = numbered_lines(&text);
    let header = match lines.next() {
        Some((_, h)) => Header::new(&path, h),
        None => return Err(DataError::Empty { path, what: "file".into() }),
    };
    let c_session = header.require("SessionId")?;
    let c_item = header.require("ItemId")?;
    let c_time = header.require("Time")?;
    let c_cat = header.require("CatId")?;
    let c_price = header.require("Price")?;
    let c_name = header.require("Name")?;

    // Item metadata by numeric id (BTreeMap-like order is imposed below).
    let mut items: HashMap<u64, Item> = HashMap::new();
    let mut session_index: HashMap<String, usize> = HashMap::new();
    // (session id, events as (item id, time)); first-appearance order.
    let mut sessions: Vec<(String, Vec<(u64, i64)>)> = Vec::new();
    let mut rows = 0usize;
    let mut duplicates = 0usize;
    for (line_no, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        rows += 1;
        let f = split_tabs(&path, line_no, line, header.len())?;
        let session = f[c_session].trim();
        let item: u64 = parse_field(&path, line_no, "ItemId", f[c_item])?;
        let time = parse_time(&path, line_no, "Time", f[c_time])?;
        let cat = f[c_cat].trim();
        let price: u8 = parse_field(&path, line_no, "Price", f[c_price])?;
        if session.is_empty() {
            return Err(DataError::parse(&path, line_no, "empty SessionId"));
        }
        items.entry(item).or_insert_with(|| Item {
            id: item.to_string(),
            text: name_tokens(f[c_name]),
            category: (!cat.is_empty()).then(|| cat.to_string()),
            price_level: Some(cap_price_level(price)),
        });
        let si = *session_index.entry(session.to_string()).or_insert_with(|| {
            sessions.push((session.to_string(), Vec::new()));
            sessions.len() - 1
        });
        let events = &mut sessions[si].1;
        if events.last() == Some(&(item, time)) {
            duplicates += 1;
            continue;
        }
        events.push((item, time));
    }
    if sessions.is_empty() {
        return Err(DataError::Empty { path, what: "session list".into() });
    }

    let mut ids: Vec<u64> = items.keys().copied().collect();
    ids.sort_unstable();
    let mut catalog = Catalog::new();
    for id in ids {
        if let Some(item) = items.remove(&id) {
            catalog.upsert(item);
        }
    }

    let mut sessions: Vec<Session> = sessions
        .into_iter()
        .map(|(id, evs)| Session {
            id,
            events: evs
                .into_iter()
                .map(|(item, t)| Event {
                    // Every item was upserted above, so the lookup cannot fail; `intern` keeps
                    // this total without an unwrap.
                    item: catalog.intern(&item.to_string()),
                    kind: EventKind::View,
                    timestamp: Some(t),
                })
                .collect(),
        })
        .collect();
    sessions.sort_by_key(|s| s.events.first().and_then(|e| e.timestamp).unwrap_or(i64::MIN));

    let n = sessions.len();
    let RecentSplit { train, valid: valid_sessions, test: test_sessions } =
        split_recent(sessions, TEST_FRACTION, VALID_FRACTION, 0);

    let known: HashSet<u32> = train.iter().flat_map(|s| s.events.iter().map(|e| e.item)).collect();
    let test = cases_of(&test_sessions, |e| known.contains(&e.item));
    let valid = cases_of(&valid_sessions, |e| known.contains(&e.item));

    let all_events: usize =
        train.iter().chain(&valid_sessions).chain(&test_sessions).map(|s| s.events.len()).sum();
    let dataset = Dataset {
        name: "diginetica-slice".into(),
        kind: DatasetKind::Sessions,
        catalog,
        train,
        valid,
        test,
    };
    let mut summary = ImportSummary::of(&dataset);
    summary.events_by_kind = [all_events, 0, 0];
    summary.notes.push(format!(
        "{rows} rows, {duplicates} join duplicates dropped, {all_events} events in {n} sessions"
    ));
    summary.notes.push(format!(
        "split by session start: {} train / {} valid / {} test sessions",
        dataset.train.len(),
        valid_sessions.len(),
        test_sessions.len()
    ));
    Ok(Imported { dataset, summary })
}

/// `343283,120564` → `w343283 w120564`: the hashed title word ids as word-like tokens, so a
/// word-level tokenizer sees one token per title word.
fn name_tokens(name: &str) -> String {
    name.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| format!("w{t}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert_eq!(name_tokens("343283,120564,120564"), "w343283 w120564 w120564");
        assert_eq!(name_tokens(""), "");
    }

    #[test]
    fn dedupes_and_splits() -> Result<()> {
        let tmp =
            tempfile::tempdir().map_err(|e| DataError::Io { path: "tmp".into(), source: e })?;
        let d = tmp.path().join("slice-with-metadata");
        std::fs::create_dir_all(&d).map_err(|e| DataError::Io { path: d.clone(), source: e })?;
        let mut s = String::from("SessionId\tItemId\tTime\tCatId\tPrice\tName\tSearchTokens\n");
        // 5 sessions on day 1, duplicated first row.
        for sid in 1..=5 {
            let t = 100.0 * f64::from(sid);
            s += &format!("{sid}\t1\t{t}\t9\t3\t11,12\t0\n");
            s += &format!("{sid}\t1\t{t}\t9\t3\t11,12\t0\n");
            s += &format!("{sid}\t2\t{t}\t9\t5\t13\t0\n");
        }
        let p = d.join("diginetica_train_valid.txt");
        std::fs::write(&p, s).map_err(|e| DataError::Io { path: p.clone(), source: e })?;
        let imp = import_diginetica_slice(tmp.path())?;
        let ds = &imp.dataset;
        assert_eq!(ds.catalog.len(), 2);
        assert_eq!(ds.catalog.get(0).map(|i| i.text.as_str()), Some("w11 w12"));
        assert_eq!(ds.catalog.get(1).and_then(|i| i.price_level), Some(5));
        assert_eq!(ds.train.len(), 4); // 1 test session, 0 valid (10% of 4 rounds to 0)
        assert!(ds.train.iter().all(|s| s.events.len() == 2));
        assert_eq!(ds.test.len(), 1);
        assert_eq!(ds.train[0].id, "1");
        assert_eq!(ds.train[0].events[0].timestamp, Some(100));

        // A time that is no Unix time is refused naming its line and column (`parse_time`).
        let bad =
            "SessionId\tItemId\tTime\tCatId\tPrice\tName\tSearchTokens\n1\t1\t1e400\t9\t3\t11\t0\n";
        std::fs::write(&p, bad).map_err(|e| DataError::Io { path: p.clone(), source: e })?;
        let msg =
            import_diginetica_slice(tmp.path()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains(":2:") && msg.contains("`Time`"), "{msg}");
        Ok(())
    }
}
