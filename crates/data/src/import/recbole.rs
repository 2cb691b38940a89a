//! RecBole atomic files, so any dataset RecBole ships (or a shop exports in its format) can be
//! imported without writing a new importer.
//!
//! * `<name>.inter` (required): tab-separated, header fields `name:type`, e.g.
//!   `session_id:token item_id:token timestamp:float`. Needs `item_id` and one of `session_id`
//!   or `user_id` (a user's history then plays the role of a session); `timestamp` and
//!   `event_type` (view / add_to_cart / purchase, or the aliases [`EventKind::parse`] knows) are
//!   optional. Without a timestamp the file order is the time order, as in RecBole.
//! * `<name>.item` (optional): `item_id:token` plus content columns. Every other `:token` /
//!   `:token_seq` column becomes item text (in column order); a `category`/`categories` column
//!   gives the leaf category (the last element when the value is a `|`- or `,`-separated path)
//!   and is also part of the text; `price:float` gives the price level `floor(log2(price+1))`
//!   capped ([`crate::price::price_level`]). Items that occur only in `.inter` get no content.
//!
//! Sessions are grouped by `session_id` (else `user_id`), sorted by timestamp (stable) and
//! ordered by their first timestamp; the split is leave-one-out, as for Amazon Beauty.

use super::{
    Header, ImportSummary, Imported, leave_one_out, numbered_lines, parse_field, parse_time,
    read_text, split_tabs,
};
use crate::error::{DataError, Result};
use crate::price::price_level;
use crate::session::{Catalog, Dataset, DatasetKind, Event, EventKind, Item, Session};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A RecBole header: the base name of each field (`item_id` for `item_id:token`) and its type.
struct AtomicHeader {
    header: Header,
    types: Vec<String>,
}

impl AtomicHeader {
    fn new(path: &Path, line: &str) -> Self {
        let mut bases = Vec::new();
        let mut types = Vec::new();
        for field in line.split('\t') {
            let field = field.trim();
            let (base, ty) = field.split_once(':').unwrap_or((field, "token"));
            bases.push(base.to_string());
            types.push(ty.to_string());
        }
        Self { header: Header::new(path, &bases.join("\t")), types }
    }
}

/// Import `<dir>/<name>.inter` (and `<dir>/<name>.item` when present).
pub fn import_recbole(dir: &Path, name: &str) -> Result<Imported> {
    let inter_path = dir.join(format!("{name}.inter"));
    let item_path = dir.join(format!("{name}.item"));
    let mut catalog = Catalog::new();
    let mut notes = Vec::new();
    if item_path.exists() {
        read_items(&item_path, &mut catalog)?;
        notes.push(format!("{} items with content from {}", catalog.len(), item_path.display()));
    }

    let text = read_text(&inter_path)?;
    let mut lines = numbered_lines(&text);
    let Some((_, header_line)) = lines.next() else {
        return Err(DataError::Empty { path: inter_path, what: "file".into() });
    };
    let h = AtomicHeader::new(&inter_path, header_line);
    let c_item = h.header.require("item_id")?;
    // Grouped by user, a sequence is a user's whole history rather than one visit.
    let (c_group, kind) = match (h.header.find("session_id"), h.header.find("user_id")) {
        (Some(c), _) => (c, DatasetKind::Sessions),
        (None, Some(c)) => (c, DatasetKind::Histories),
        (None, None) => {
            return Err(DataError::MissingColumn {
                path: inter_path,
                column: "session_id (or user_id)".into(),
            });
        }
    };
    let c_time = h.header.find("timestamp");
    let c_kind = h.header.find("event_type");

    let mut by_group: HashMap<String, usize> = HashMap::new();
    let mut sessions: Vec<Session> = Vec::new();
    let mut events_by_kind = [0usize; EventKind::COUNT];
    let mut rows = 0usize;
    for (line_no, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let f = split_tabs(&inter_path, line_no, line, h.header.len())?;
        let item_id = f[c_item].trim();
        let group = f[c_group].trim();
        if item_id.is_empty() || group.is_empty() {
            return Err(DataError::parse(&inter_path, line_no, "empty item_id or session/user id"));
        }
        let timestamp = match c_time {
            Some(c) => Some(parse_time(&inter_path, line_no, "timestamp", f[c])?),
            None => None,
        };
        let kind = match c_kind {
            Some(c) => EventKind::parse(f[c]).ok_or_else(|| {
                DataError::parse(
                    &inter_path,
                    line_no,
                    format!("unknown event_type `{}`", f[c].trim()),
                )
            })?,
            None => EventKind::View,
        };
        let item = catalog.intern(item_id);
        let si = *by_group.entry(group.to_string()).or_insert_with(|| {
            sessions.push(Session { id: group.to_string(), events: Vec::new() });
            sessions.len() - 1
        });
        sessions[si].events.push(Event { item, kind, timestamp });
        events_by_kind[kind as usize] += 1;
        rows += 1;
    }
    if sessions.is_empty() {
        return Err(DataError::Empty { path: inter_path, what: "interaction list".into() });
    }
    if c_time.is_some() {
        for s in &mut sessions {
            s.events.sort_by_key(|e| e.timestamp);
        }
        sessions.sort_by_key(|s| s.events.first().and_then(|e| e.timestamp));
    }
    notes.push(format!(
        "{rows} interactions in {} sessions from {}",
        sessions.len(),
        inter_path.display()
    ));

    let (train, valid, test) = leave_one_out(sessions);
    let dataset = Dataset { name: name.to_string(), kind, catalog, train, valid, test };
    let mut summary = ImportSummary::of(&dataset);
    summary.events_by_kind = events_by_kind;
    summary.notes = notes;
    Ok(Imported { dataset, summary })
}

/// Read a `.item` file into the catalog.
fn read_items(path: &Path, catalog: &mut Catalog) -> Result<()> {
    let text = read_text(path)?;
    let mut lines = numbered_lines(&text);
    let Some((_, header_line)) = lines.next() else {
        return Err(DataError::Empty { path: PathBuf::from(path), what: "file".into() });
    };
    let h = AtomicHeader::new(path, header_line);
    let c_id = h.header.require("item_id")?;
    let c_cat = h.header.find("categories").or_else(|| h.header.find("category"));
    let c_price = h.header.find("price");
    let text_cols: Vec<usize> = (0..h.header.len())
        .filter(|&c| c != c_id && matches!(h.types[c].as_str(), "token" | "token_seq"))
        .collect();
    for (line_no, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let f = split_tabs(path, line_no, line, h.header.len())?;
        let id = f[c_id].trim();
        if id.is_empty() {
            return Err(DataError::parse(path, line_no, "empty item_id"));
        }
        let category = c_cat.map(|c| leaf(f[c])).filter(|c| !c.is_empty());
        let price = match c_price {
            Some(c) if !f[c].trim().is_empty() => {
                price_level(parse_field::<f64>(path, line_no, "price", f[c])?)
            }
            _ => None,
        };
        let text = text_cols
            .iter()
            .map(|&c| f[c].trim())
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        catalog.upsert(Item { id: id.to_string(), text, category, price_level: price });
    }
    Ok(())
}

/// The leaf of a category path: `Beauty|Makeup|Nail Polish` → `Nail Polish`.
fn leaf(value: &str) -> String {
    value.rsplit(['|', ',']).map(str::trim).find(|s| !s.is_empty()).unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, s: &str) -> Result<()> {
        std::fs::write(p, s).map_err(|e| DataError::Io { path: p.to_path_buf(), source: e })
    }

    fn tmp() -> Result<tempfile::TempDir> {
        tempfile::tempdir().map_err(|e| DataError::Io { path: "tmp".into(), source: e })
    }

    #[test]
    fn sessions_items_and_split() -> Result<()> {
        let t = tmp()?;
        write(
            &t.path().join("shop.inter"),
            "session_id:token\titem_id:token\ttimestamp:float\tevent_type:token\n\
             s1\ta\t3\tview\n\
             s1\tb\t1\tview\n\
             s2\tc\t0\tview\n\
             s1\tc\t5\tpurchase\n\
             s2\ta\t2\tadd_to_cart\n\
             s2\tb\t4\tview\n",
        )?;
        write(
            &t.path().join("shop.item"),
            "item_id:token\ttitle:token_seq\tcategories:token_seq\tprice:float\tsales:float\n\
             a\tred lipstick\tMakeup|Lips\t7\t1\n\
             b\tblue pen\t\t\t2\n",
        )?;
        let imp = import_recbole(t.path(), "shop")?;
        let d = &imp.dataset;
        assert_eq!(d.catalog.len(), 3);
        let a = d.catalog.get(0).cloned().unwrap_or_default();
        assert_eq!(a.text, "red lipstick Makeup|Lips");
        assert_eq!(a.category.as_deref(), Some("Lips"));
        assert_eq!(a.price_level, Some(3));
        assert_eq!(d.catalog.get(1).and_then(|i| i.price_level), None);
        // s2 starts at t=0, s1 at t=1; both have 3 events → train 1 event each.
        assert_eq!(d.train.len(), 2);
        assert_eq!(d.train[0].id, "s2");
        assert_eq!(d.test.len(), 2);
        // s1 sorted by time: b(1) a(3) c(5, purchase).
        assert_eq!(d.test[1].target, 2);
        assert_eq!(d.test[1].prefix.iter().map(|e| e.item).collect::<Vec<_>>(), vec![1, 0]);
        assert_eq!(imp.summary.events_by_kind, [4, 1, 1]);
        assert_eq!(d.kind, DatasetKind::Sessions);
        Ok(())
    }

    #[test]
    fn user_id_and_no_timestamp() -> Result<()> {
        let t = tmp()?;
        write(&t.path().join("u.inter"), "user_id:token\titem_id:token\n1\tx\n1\ty\n1\tz\n")?;
        let imp = import_recbole(t.path(), "u")?;
        assert_eq!(imp.dataset.test.len(), 1);
        assert_eq!(imp.dataset.test[0].target, 2);
        assert_eq!(imp.dataset.kind, DatasetKind::Histories, "grouped by user_id");
        Ok(())
    }

    #[test]
    fn missing_column() -> Result<()> {
        let t = tmp()?;
        write(&t.path().join("m.inter"), "session_id:token\tproduct:token\n1\tx\n")?;
        match import_recbole(t.path(), "m") {
            Err(DataError::MissingColumn { path, column }) => {
                assert!(path.ends_with("m.inter"));
                assert_eq!(column, "item_id");
            }
            other => panic!("expected MissingColumn, got {other:?}"),
        }
        write(&t.path().join("m.inter"), "item_id:token\ttimestamp:float\nx\t1\n")?;
        assert!(matches!(import_recbole(t.path(), "m"), Err(DataError::MissingColumn { .. })));
        Ok(())
    }

    #[test]
    fn malformed_line_names_file_and_line() -> Result<()> {
        let t = tmp()?;
        write(
            &t.path().join("bad.inter"),
            "session_id:token\titem_id:token\ttimestamp:float\n1\tx\t10\n1\ty\tnoon\n",
        )?;
        let err = import_recbole(t.path(), "bad").err();
        match &err {
            Some(DataError::Parse { path, line, .. }) => {
                assert!(path.ends_with("bad.inter"));
                assert_eq!(*line, 3);
            }
            other => panic!("expected Parse, got {other:?}"),
        }
        let msg = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("bad.inter:3:"), "{msg}");

        write(&t.path().join("bad.inter"), "session_id:token\titem_id:token\n1\tx\n1\ty\textra\n")?;
        let msg = import_recbole(t.path(), "bad").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("bad.inter:3:") && msg.contains("fields"), "{msg}");
        Ok(())
    }
}
