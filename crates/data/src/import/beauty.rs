//! Amazon "Beauty" review sequences, as distributed with S3-Rec.
//!
//! Files under `<dir>/`:
//! * `Beauty.txt` — `user item1 item2 …` per line, chronological per user.
//! * `Beauty_item_meta.tsv` — header `item_id asin s3rec_attribute_ids attribute_names
//!   idgenrec_title_id`; `attribute_names` is a `|`-separated path (brand first when known,
//!   e.g. `OPI|Makeup|Nails|Nail Polish`, or `Unknown|Skin Care|…`), the last column holds words
//!   taken from the product title.
//!
//! The external item id is the S3-Rec item number (what `Beauty.txt` uses); the catalog holds the
//! items in the metadata file's order (ascending id, so `ItemIdx == id - 1`). Item text = the
//! attribute path (without the `Unknown` brand placeholder) followed by the title words; the
//! category is the leaf of the path ("Nail Polish"), the level shops and the model's category
//! embedding care about.
//!
//! Split: leave-one-out, as in SASRec/S3-Rec — see [`super::leave_one_out`]. Each user's history
//! is one [`Session`] with id = the user id; there are no timestamps.

use super::{
    Header, ImportSummary, Imported, leave_one_out, numbered_lines, parse_field, read_text,
    split_tabs,
};
use crate::error::{DataError, Result};
use crate::session::{Catalog, Dataset, DatasetKind, Event, Item, Session};
use std::path::Path;

/// Import Amazon Beauty from `dir` (the `amazon-beauty/` directory).
pub fn import_beauty(dir: &Path) -> Result<Imported> {
    let meta_path = dir.join("Beauty_item_meta.tsv");
    let seq_path = dir.join("Beauty.txt");

    let text = read_text(&meta_path)?;
    let mut lines = numbered_lines(&text);
    let header = match lines.next() {
        Some((_, h)) => Header::new(&meta_path, h),
        None => return Err(DataError::Empty { path: meta_path, what: "file".into() }),
    };
    let c_id = header.require("item_id")?;
    let c_attr = header.require("attribute_names")?;
    let c_title = header.require("idgenrec_title_id")?;
    let mut catalog = Catalog::new();
    for (line_no, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let f = split_tabs(&meta_path, line_no, line, header.len())?;
        let id: u64 = parse_field(&meta_path, line_no, "item_id", f[c_id])?;
        let path: Vec<&str> =
            f[c_attr].split('|').map(str::trim).filter(|p| !p.is_empty()).collect();
        let category = path.last().map(|c| c.to_string());
        let mut words: Vec<&str> = path.iter().copied().filter(|p| *p != "Unknown").collect();
        let title = f[c_title].trim();
        if !title.is_empty() {
            words.push(title);
        }
        let id = id.to_string();
        if catalog.lookup(&id).is_some() {
            return Err(DataError::parse(
                &meta_path,
                line_no,
                format!("item id {id} listed twice"),
            ));
        }
        catalog.upsert(Item { id, text: words.join(" "), category, price_level: None });
    }
    if catalog.is_empty() {
        return Err(DataError::Empty { path: meta_path, what: "item list".into() });
    }

    let text = read_text(&seq_path)?;
    let mut histories = Vec::new();
    let mut interactions = 0usize;
    for (line_no, line) in numbered_lines(&text) {
        let mut toks = line.split_ascii_whitespace();
        let Some(user) = toks.next() else { continue };
        let _: u64 = parse_field(&seq_path, line_no, "user", user)?;
        let mut events = Vec::new();
        for tok in toks {
            let _: u64 = parse_field(&seq_path, line_no, "item", tok)?;
            let idx = catalog.lookup(tok).ok_or_else(|| DataError::UnknownItem {
                path: seq_path.clone(),
                line: line_no,
                id: tok.to_string(),
            })?;
            events.push(Event::view(idx));
        }
        if events.is_empty() {
            return Err(DataError::parse(&seq_path, line_no, "user without items"));
        }
        interactions += events.len();
        histories.push(Session { id: user.to_string(), events });
    }
    if histories.is_empty() {
        return Err(DataError::Empty { path: seq_path, what: "user list".into() });
    }
    let users = histories.len();
    let (train, valid, test) = leave_one_out(histories);
    let dataset = Dataset {
        name: "amazon-beauty".into(),
        kind: DatasetKind::Histories,
        catalog,
        train,
        valid,
        test,
    };
    let mut summary = ImportSummary::of(&dataset);
    summary.events_by_kind = [interactions, 0, 0];
    summary.notes.push(format!("{users} users, {interactions} interactions; leave-one-out split"));
    Ok(Imported { dataset, summary })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small() -> Result<()> {
        let tmp =
            tempfile::tempdir().map_err(|e| DataError::Io { path: "tmp".into(), source: e })?;
        let io = |p: &Path, s: &str| {
            std::fs::write(p, s).map_err(|e| DataError::Io { path: p.to_path_buf(), source: e })
        };
        io(
            &tmp.path().join("Beauty_item_meta.tsv"),
            "item_id\tasin\ts3rec_attribute_ids\tattribute_names\tidgenrec_title_id\n\
             1\tA\t1,2\tOPI|Makeup|Nails|Nail Polish\tnail lacquer\n\
             2\tB\t3\tUnknown|Skin Care\tbalm\n\
             3\tC\t4\tFragrance\t\n",
        )?;
        io(&tmp.path().join("Beauty.txt"), "1 1 2 3 1\n2 3 2\n")?;
        let imp = import_beauty(tmp.path())?;
        let d = &imp.dataset;
        assert_eq!(
            d.catalog.get(0).map(|i| i.text.as_str()),
            Some("OPI Makeup Nails Nail Polish nail lacquer")
        );
        assert_eq!(d.catalog.get(0).and_then(|i| i.category.as_deref()), Some("Nail Polish"));
        assert_eq!(d.catalog.get(1).map(|i| i.text.as_str()), Some("Skin Care balm"));
        assert_eq!(d.catalog.get(2).map(|i| i.text.as_str()), Some("Fragrance"));
        assert_eq!(d.test.len(), 2);
        assert_eq!(d.valid.len(), 1); // user 2 has only 2 items: test case, no validation case
        assert_eq!(d.train.len(), 1);
        assert_eq!(d.test[0].target, 0);
        assert_eq!(d.valid[0].target, 2);

        io(&tmp.path().join("Beauty.txt"), "1 1 2\n2 3 77\n")?;
        match import_beauty(tmp.path()) {
            Err(DataError::UnknownItem { line: 2, id, .. }) => assert_eq!(id, "77"),
            other => panic!("expected UnknownItem on line 2, got {other:?}"),
        }
        Ok(())
    }
}
