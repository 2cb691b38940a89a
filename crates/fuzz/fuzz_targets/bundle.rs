//! A downloaded model bundle: `manifest.json` (parsed and checked first), then the files it
//! names — `weights.bpk` (the burnpack weight loader), `tokenizer.json` and `items.json` (a
//! full bundle) or `categories.json` (a browser bundle) — built into the engine that re-ranks.
//!
//! Input: [`parts`] manifest, weights, tokenizer or categories, items. The files are checked
//! against the manifest as a download is (`from_parts`), and also given the right checksums
//! (`ModelBundle::new`) so the parsers behind the check see every mutation.
#![no_main]

use burn::tensor::Device;
use sessionrank_core::bundle::{CATEGORIES, ITEMS, TOKENIZER, WEIGHTS};
use sessionrank_core::{BundleKind, Candidate, ModelBundle, Reranker, SessionEvent};
use sessionrank_fuzz::{files, parts};

libfuzzer_sys::fuzz_target!(
    init: {
        // `SESSIONRANK_FUZZ_SEEDS=<dir>`: write every target's seeds and stop (see seeds.rs).
        if let Some(dir) = std::env::var_os("SESSIONRANK_FUZZ_SEEDS") {
            match sessionrank_fuzz::seeds::write_seeds(std::path::Path::new(&dir)) {
                Ok(()) => std::process::exit(0),
                Err(e) => panic!("writing the seeds: {e:#}"),
            }
        }
    },
    |data: &[u8]| {
    let p = parts(data, 4);
    let Ok(manifest) = ModelBundle::parse_manifest(p[0]) else { return };
    let names: &[&str] = match manifest.kind {
        BundleKind::Full => &[WEIGHTS, TOKENIZER, ITEMS],
        BundleKind::Browser => &[WEIGHTS, CATEGORIES],
    };
    let files = files(names, &p[1..]);
    let _ = ModelBundle::from_parts(p[0], files.clone());
    let bundle = ModelBundle::new(manifest, files);
    let Ok(engine) = Reranker::from_bundle(&bundle, &Device::flex()) else { return };
    let _ = bundle.browser();
    let session = [SessionEvent {
        item_id: "1".into(),
        kind: sessionrank_data::EventKind::View,
        timestamp: Some(1),
        content: None,
        vector: None,
    }];
    let _ = engine.rerank(&session, &[Candidate::new("1"), Candidate::new("2")]);
});
