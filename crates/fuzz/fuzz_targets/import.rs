//! The dataset importers (`crates/data/src/import`): RecBole atomic files and the
//! tab-separated dumps of Diginetica (SR-GNN split and metadata slice), Amazon Beauty and
//! RetailRocket, read from files as `sessionrank import` reads them.
//!
//! Input: the first byte picks the importer, the rest is [`parts`]: that importer's files in
//! the order of `LAYOUTS`. They are written to a private temporary directory (a RAM disk
//! where there is one) before each run; a file left out of the input is absent.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use sessionrank_data::import::{
    DigineticaOptions, import_beauty, import_diginetica, import_diginetica_slice, import_recbole,
    import_retailrocket,
};
use sessionrank_fuzz::parts;

/// Each importer's files, relative to the directory it is given.
const LAYOUTS: [&[&str]; 5] = [
    &["shop.inter", "shop.item"],
    &["srgnn/item_category.tsv", "srgnn/train_sessions.txt", "srgnn/test_prefixes.tsv"],
    &["slice-with-metadata/diginetica_train_valid.txt"],
    &["Beauty_item_meta.tsv", "Beauty.txt"],
    &["retailrocket_test.txt", "retailrocket_train_valid.txt"],
];

fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let made = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() };
        made.unwrap_or_else(|e| panic!("temporary directory: {e}"))
    })
    .path()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let which = usize::from(pick) % LAYOUTS.len();
    let layout = LAYOUTS[which];
    let dir = scratch().join(which.to_string());
    let p = parts(rest, layout.len());
    for (i, name) in layout.iter().enumerate() {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{parent:?}: {e}"));
        }
        match p.get(i) {
            Some(bytes) => std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{path:?}: {e}")),
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let imported = match which {
        0 => import_recbole(&dir, "shop"),
        1 => {
            let options =
                DigineticaOptions { holdout_valid: pick & 0x80 != 0, max_train_sessions: None };
            import_diginetica(&dir, &options)
        }
        2 => import_diginetica_slice(&dir),
        3 => import_beauty(&dir),
        _ => import_retailrocket(&dir),
    };
    if let Ok(imported) = imported {
        // What every consumer assumes of a dataset: events and targets name catalog items.
        let d = &imported.dataset;
        let n = d.catalog.len();
        for s in &d.train {
            assert!(
                s.events.iter().all(|e| (e.item as usize) < n),
                "train event outside the catalog"
            );
        }
        for c in d.valid.iter().chain(&d.test) {
            assert!((c.target as usize) < n, "target outside the catalog");
            assert!(c.prefix.iter().all(|e| (e.item as usize) < n), "prefix outside the catalog");
        }
        let _ = imported.summary.to_string();
    }
});
