//! RetailRocket e-commerce events with event types (view / add-to-cart / transaction).
//!
//! Files under `<dir>/` (tab-separated, raw ids, times in Unix seconds):
//! * `retailrocket_test.txt` — header `Time UserId Type ItemId SessionId CatId`.
//! * `retailrocket_train_valid.txt` — the same layout, but **its header swaps two names**
//!   (`… CatId SessionId ItemId`): the 4th column really is the item and the last the category.
//!   Both files are therefore read positionally in the test file's layout; the header is only
//!   checked to name the six expected columns, so a file of another shape is refused.
//!
//! The two files overlap in time (they come from one preprocessing run with different cut-offs),
//! so this importer takes their union, drops exact duplicates (same time, user, type, item and
//! session), groups by `SessionId`, orders each session by time (file order among equal
//! times) and splits by time itself:
//! * the time range `[t_min, t_max]` of all events is cut at 80% and 90%;
//! * sessions that *start* in the last 10% are test sessions, those starting in the 10% before
//!   are validation sessions (held out of `train`), the rest train;
//! * test/validation cases are every prefix whose next event is a **view** of an item seen in
//!   training — "what will they look at next" is the question the recommender answers after
//!   each event; the prefix keeps all event types so the model can use cart/purchase signals.

use super::{ImportSummary, Imported, numbered_lines, parse_time, read_text, split_tabs};
use crate::error::{DataError, Result};
use crate::session::{Catalog, Dataset, DatasetKind, Event, EventKind, Item, Session};
use crate::split::cases_of;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Files in the order they are read (train_valid first, so its rows win ties in file order).
pub const FILES: [&str; 2] = ["retailrocket_train_valid.txt", "retailrocket_test.txt"];

/// Positional layout of both files.
const LAYOUT: [&str; 6] = ["Time", "UserId", "Type", "ItemId", "SessionId", "CatId"];
const C_TIME: usize = 0;
const C_USER: usize = 1;
const C_TYPE: usize = 2;
const C_ITEM: usize = 3;
const C_SESSION: usize = 4;
const C_CAT: usize = 5;

/// Share of the time range (the most recent) whose sessions are test sessions.
pub const TEST_FRACTION: f64 = 0.1;
/// Share of the time range just before the test window whose sessions validate.
pub const VALID_FRACTION: f64 = 0.1;

/// One raw row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawEvent {
    /// Unix seconds.
    pub time: i64,
    pub user: String,
    pub kind: EventKind,
    pub item: String,
    pub session: String,
    pub category: String,
}

/// Raw counts of one file, as its README states them (duplicates included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStats {
    pub rows: usize,
    /// Indexed by `EventKind as usize`.
    pub by_kind: [usize; EventKind::COUNT],
    pub sessions: usize,
}

/// Read one RetailRocket file (either of the two) into raw rows.
pub fn read_file(path: &Path) -> Result<Vec<RawEvent>> {
    let text = read_text(path)?;
    let mut lines = numbered_lines(&text);
    let Some((_, header)) = lines.next() else {
        return Err(DataError::Empty { path: path.to_path_buf(), what: "file".into() });
    };
    let names: HashSet<&str> = header.split('\t').map(str::trim).collect();
    for column in LAYOUT {
        if !names.contains(column) {
            return Err(DataError::MissingColumn {
                path: path.to_path_buf(),
                column: column.into(),
            });
        }
    }
    let mut out = Vec::new();
    for (line_no, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let f = split_tabs(path, line_no, line, LAYOUT.len())?;
        let time = parse_time(path, line_no, "Time", f[C_TIME])?;
        let kind = EventKind::parse(f[C_TYPE]).ok_or_else(|| {
            DataError::parse(path, line_no, format!("unknown event type `{}`", f[C_TYPE]))
        })?;
        let item = f[C_ITEM].trim();
        let session = f[C_SESSION].trim();
        if item.is_empty() || session.is_empty() {
            return Err(DataError::parse(path, line_no, "empty ItemId or SessionId"));
        }
        out.push(RawEvent {
            time,
            user: f[C_USER].trim().to_string(),
            kind,
            item: item.to_string(),
            session: session.to_string(),
            category: f[C_CAT].trim().to_string(),
        });
    }
    Ok(out)
}

/// Raw counts of one file (for checking against the README).
pub fn file_stats(path: &Path) -> Result<FileStats> {
    let rows = read_file(path)?;
    let mut by_kind = [0usize; EventKind::COUNT];
    for r in &rows {
        by_kind[r.kind as usize] += 1;
    }
    let sessions = rows.iter().map(|r| r.session.as_str()).collect::<HashSet<_>>().len();
    Ok(FileStats { rows: rows.len(), by_kind, sessions })
}

/// Import RetailRocket from `dir` (the `retailrocket/` directory).
pub fn import_retailrocket(dir: &Path) -> Result<Imported> {
    let mut notes = Vec::new();
    let mut seen: HashSet<RawEvent> = HashSet::new();
    let mut events: Vec<RawEvent> = Vec::new();
    let mut rows = 0usize;
    for name in FILES {
        let path = dir.join(name);
        let raw = read_file(&path)?;
        let mut by_kind = [0usize; EventKind::COUNT];
        for r in &raw {
            by_kind[r.kind as usize] += 1;
        }
        notes.push(format!(
            "{name}: {} rows (view {}, add_to_cart {}, purchase {})",
            raw.len(),
            by_kind[0],
            by_kind[1],
            by_kind[2]
        ));
        rows += raw.len();
        for r in raw {
            if seen.insert(r.clone()) {
                events.push(r);
            }
        }
    }
    drop(seen);
    if events.is_empty() {
        return Err(DataError::Empty {
            path: dir.to_path_buf(),
            what: "RetailRocket event list".into(),
        });
    }
    notes.push(format!(
        "{} distinct events after dropping {} duplicates",
        events.len(),
        rows - events.len()
    ));

    // Catalog: items by first appearance; category from CatId (consistent per item in the data;
    // should it not be, the last row wins).
    let mut catalog = Catalog::new();
    let mut by_session: HashMap<&str, usize> = HashMap::new();
    let mut sessions: Vec<Session> = Vec::new();
    let mut events_by_kind = [0usize; EventKind::COUNT];
    for r in &events {
        let item = catalog.intern(&r.item);
        if !r.category.is_empty() {
            catalog.upsert(Item {
                id: r.item.clone(),
                text: String::new(),
                category: Some(r.category.clone()),
                price_level: None,
            });
        }
        let si = *by_session.entry(r.session.as_str()).or_insert_with(|| {
            sessions.push(Session { id: r.session.clone(), events: Vec::new() });
            sessions.len() - 1
        });
        sessions[si].events.push(Event { item, kind: r.kind, timestamp: Some(r.time) });
        events_by_kind[r.kind as usize] += 1;
    }
    for s in &mut sessions {
        s.events.sort_by_key(|e| e.timestamp);
    }
    let start = |s: &Session| s.events.first().and_then(|e| e.timestamp).unwrap_or(i64::MIN);
    sessions.sort_by_key(start);

    let t_min = events.iter().map(|r| r.time).min().unwrap_or(0);
    let t_max = events.iter().map(|r| r.time).max().unwrap_or(0);
    let span = (t_max - t_min) as f64;
    let t_test = t_max - (span * TEST_FRACTION).round() as i64;
    let t_valid = t_test - (span * VALID_FRACTION).round() as i64;
    let mut train = Vec::new();
    let mut valid_sessions = Vec::new();
    let mut test_sessions = Vec::new();
    for s in sessions {
        let t = start(&s);
        if t >= t_test {
            test_sessions.push(s);
        } else if t >= t_valid {
            valid_sessions.push(s);
        } else {
            train.push(s);
        }
    }
    let known: HashSet<u32> = train.iter().flat_map(|s| s.events.iter().map(|e| e.item)).collect();
    let keep = |e: &Event| e.kind == EventKind::View && known.contains(&e.item);
    let test = cases_of(&test_sessions, keep);
    let valid = cases_of(&valid_sessions, keep);
    notes.push(format!(
        "time range {t_min}..{t_max} s; valid sessions start >= {t_valid}, test sessions >= {t_test}: \
         {} train / {} valid / {} test sessions",
        train.len(),
        valid_sessions.len(),
        test_sessions.len()
    ));

    let dataset = Dataset {
        name: "retailrocket".into(),
        kind: DatasetKind::Sessions,
        catalog,
        train,
        valid,
        test,
    };
    let mut summary = ImportSummary::of(&dataset);
    summary.events_by_kind = events_by_kind;
    summary.notes = notes;
    Ok(Imported { dataset, summary })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, s: &str) -> Result<()> {
        std::fs::write(p, s).map_err(|e| DataError::Io { path: p.to_path_buf(), source: e })
    }

    #[test]
    fn union_dedupe_and_split() -> Result<()> {
        let tmp =
            tempfile::tempdir().map_err(|e| DataError::Io { path: "tmp".into(), source: e })?;
        let d = tmp.path();
        // Swapped header in train_valid, as in the real data.
        write(
            &d.join(FILES[0]),
            "Time\tUserId\tType\tCatId\tSessionId\tItemId\n\
             0\tu\tview\t10\t1\t5\n\
             10\tu\taddtocart\t10\t1\t5\n\
             20\tu\tview\t11\t1\t5\n\
             50\tv\tview\t10\t2\t5\n",
        )?;
        write(
            &d.join(FILES[1]),
            "Time\tUserId\tType\tItemId\tSessionId\tCatId\n\
             50\tv\tview\t10\t2\t5\n\
             95\tw\tview\t10\t3\t5\n\
             96\tw\ttransaction\t10\t3\t5\n\
             97\tw\tview\t11\t3\t5\n\
             100\tw\tview\t12\t3\t7\n",
        )?;
        let imp = import_retailrocket(d)?;
        let ds = &imp.dataset;
        assert_eq!(imp.summary.events_by_kind, [6, 1, 1]);
        assert_eq!(ds.catalog.len(), 3);
        assert_eq!(ds.catalog.get(0).and_then(|i| i.category.as_deref()), Some("5"));
        assert_eq!(ds.train.len(), 2);
        assert_eq!(ds.train[0].events[1].kind, EventKind::AddToCart);
        // Session 3 starts at 95 >= 100 - 10: test. Targets: view of 11 (known) yes,
        // transaction no, view of 12 (unknown) no.
        assert_eq!(ds.test.len(), 1);
        assert_eq!(ds.test[0].prefix.len(), 2);
        assert_eq!(ds.test[0].prefix[1].kind, EventKind::Purchase);
        Ok(())
    }

    #[test]
    fn bad_type_and_missing_column() -> Result<()> {
        let tmp =
            tempfile::tempdir().map_err(|e| DataError::Io { path: "tmp".into(), source: e })?;
        let p = tmp.path().join("x.txt");
        write(
            &p,
            "Time\tUserId\tType\tItemId\tSessionId\tCatId\n1\tu\tview\t1\t1\t1\n2\tu\tlike\t1\t1\t1\n",
        )?;
        let msg = read_file(&p).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("x.txt:3:") && msg.contains("like"), "{msg}");
        write(&p, "Time\tUserId\tType\tItemId\tSession\tCatId\n")?;
        match read_file(&p) {
            Err(DataError::MissingColumn { column, .. }) => assert_eq!(column, "SessionId"),
            other => panic!("expected MissingColumn, got {other:?}"),
        }
        Ok(())
    }

    /// A time that parses but is no Unix time (`1e400` is infinity as f64; the fuzzer's
    /// `143322e332` beside a negative time overflowed the split's `t_max - t_min`) is refused
    /// naming the line and column; milliseconds still read as seconds.
    #[test]
    fn a_time_beyond_any_calendar_is_refused() -> Result<()> {
        let tmp =
            tempfile::tempdir().map_err(|e| DataError::Io { path: "tmp".into(), source: e })?;
        let p = tmp.path().join("x.txt");
        let header = "Time\tUserId\tType\tItemId\tSessionId\tCatId\n";
        for bad in ["143322e332", "1e400", "-9e300", "NaN", "inf"] {
            write(&p, &format!("{header}1\tu\tview\t1\t1\t1\n{bad}\tu\tview\t1\t1\t1\n"))?;
            let msg = read_file(&p).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(msg.contains("x.txt:3:") && msg.contains("`Time`"), "{bad}: {msg}");
        }
        write(&p, &format!("{header}1433221400123\tu\tview\t1\t1\t1\n-5\tu\tview\t1\t1\t1\n"))?;
        let rows = read_file(&p)?;
        assert_eq!((rows[0].time, rows[1].time), (1_433_221_400, -5));
        Ok(())
    }
}
