//! Import counts and baseline sanity on the real datasets (`shared/data`, see its README), and
//! on the bundled samples (`tests/data`: the Diginetica slice and the demo's Amazon Beauty
//! sample, always present).
//!
//! A test whose dataset is absent skips, saying so on stderr, so the crate's tests pass on a
//! machine without the data; under `CI=true` it fails instead (see [`dataset`]), so CI cannot
//! pass without running it. In release mode the whole file runs in well under a minute on two
//! cores.

use std::io::Write;
use std::path::PathBuf;

use sessionrank_data::baselines::{ItemKnn, Popularity};
use sessionrank_data::eval::{Scorer, evaluate_full, evaluate_rerank};
use sessionrank_data::import::{
    DigineticaOptions, import_beauty, import_diginetica, import_diginetica_slice,
    import_retailrocket, retailrocket,
};
use sessionrank_data::sample::{CandidateSampler, SamplerSpec};
use sessionrank_data::{DATA_DIR_ENV, EventKind, Result, default_data_dir};

/// `<data dir>/<sub>`, or `None` when it is absent: the test then skips with a message written
/// straight to stderr (the test harness hides captured output of passing tests). Under
/// `CI=true` an absent dataset fails the test instead.
fn dataset(sub: &str) -> Option<PathBuf> {
    let dir = default_data_dir().join(sub);
    if dir.is_dir() {
        return Some(dir);
    }
    let missing = format!("{} not found (set {DATA_DIR_ENV})", dir.display());
    assert!(!in_ci(), "CI=true, so this test may not skip: {missing}");
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {missing}");
    None
}

/// `CI` is `true` (or `1`): what CI services set, and what `.ci/run` runs under.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The bundled slice (`tests/data/diginetica`, a copy of `shared/data`'s), found from the
/// working directory like the data dir (`cargo test` runs in the package's directory).
fn bundled_slice() -> PathBuf {
    let cwd = std::env::current_dir().expect("working directory");
    cwd.ancestors()
        .map(|d| d.join("tests/data/diginetica"))
        .find(|d| d.join("slice-with-metadata").is_dir())
        .unwrap_or_else(|| panic!("tests/data/diginetica not found above {}", cwd.display()))
}

#[test]
fn diginetica_counts_and_popularity() -> Result<()> {
    let Some(dir) = dataset("diginetica") else { return Ok(()) };
    let all_train = DigineticaOptions { holdout_valid: false, ..DigineticaOptions::default() };
    let imp = import_diginetica(&dir, &all_train)?;
    let d = &imp.dataset;
    println!("{}", imp.summary);
    assert_eq!(d.catalog.len(), 43_097);
    assert_eq!(d.catalog.lookup("1"), Some(0));
    assert_eq!(d.catalog.lookup("43097"), Some(43_096));
    assert_eq!(imp.summary.categories, 995);
    assert_eq!(d.train.len(), 186_670);
    assert_eq!(imp.summary.train_events, 906_140);
    assert_eq!(d.test.len(), 60_858);
    // Every prefix of the last 5% (9,334) of the training sessions.
    let tail: usize = d.train[186_670 - 9_334..].iter().map(|s| s.events.len() - 1).sum();
    assert_eq!(d.valid.len(), tail);
    // SR-GNN's 719,470 training pairs = clicks − sessions.
    assert_eq!(imp.summary.train_events - d.train.len(), 719_470);

    // The default: the same sessions held out of training, cut as SR-GNN cut its test
    // (clicks on items never trained on dropped), so a few cases fewer.
    let held = import_diginetica(&dir, &DigineticaOptions::default())?;
    println!("{}", held.summary);
    assert_eq!(held.dataset.train.len(), 186_670 - 9_334);
    assert!(held.dataset.valid.len() < d.valid.len(), "{}", held.dataset.valid.len());
    assert!(held.dataset.valid.len() > d.valid.len() * 9 / 10, "{}", held.dataset.valid.len());
    let small = import_diginetica(
        &dir,
        &DigineticaOptions { holdout_valid: false, max_train_sessions: Some(1000) },
    )?;
    assert_eq!(small.dataset.train.len(), 1000);
    assert_eq!(small.dataset.train.last(), d.train.last());

    // Popularity beats random (20 / 43,097 ≈ 0.05%) by a wide margin: the literature has
    // POP at P@20 ≈ 0.9 on this split.
    let pop = Popularity::fit(&d.train, d.catalog.len());
    let m = evaluate_full(&pop, &d.test, d.catalog.len(), 512, false);
    println!("popularity: {m}");
    assert_eq!(m.cases, 60_858);
    assert!(m.p_at_20 > 0.5, "{m}");

    // Item-kNN on a slice of the test set beats popularity clearly.
    let knn = ItemKnn::fit(&d.train, d.catalog.len());
    let slice = &d.test[..5_000];
    let mk = evaluate_full(&knn, slice, d.catalog.len(), 512, false);
    let mp = evaluate_full(&pop, slice, d.catalog.len(), 512, false);
    println!("item-knn on 5,000 cases: {mk}");
    assert!(mk.p_at_20 > 5.0 * mp.p_at_20, "{mk} vs {mp}");
    Ok(())
}

#[test]
fn diginetica_slice_counts() -> Result<()> {
    let imp = import_diginetica_slice(&bundled_slice())?;
    println!("{}", imp.summary);
    let d = &imp.dataset;
    assert_eq!(d.catalog.len(), 10_112);
    assert_eq!(imp.summary.events_by_kind[0], 17_889);
    assert!(d.catalog.items().iter().all(|i| i.price_level.is_some() && i.category.is_some()));
    assert!(d.catalog.items().iter().all(|i| i.text.starts_with('w')));
    assert!(!d.test.is_empty() && !d.valid.is_empty());
    let train_sessions = d.train.len();
    assert!(train_sessions > 2_900 && train_sessions < 3_300, "{train_sessions}");
    Ok(())
}

#[test]
fn beauty_counts_and_protocols() -> Result<()> {
    let Some(dir) = dataset("amazon-beauty") else { return Ok(()) };
    let imp = import_beauty(&dir)?;
    println!("{}", imp.summary);
    let d = &imp.dataset;
    assert_eq!(d.catalog.len(), 12_101);
    assert_eq!(d.test.len(), 22_363);
    assert_eq!(d.valid.len(), 22_363);
    assert_eq!(d.train.len(), 22_363);
    assert_eq!(imp.summary.events_by_kind[EventKind::View as usize], 198_502);
    assert_eq!(imp.summary.train_events, 198_502 - 2 * 22_363);
    assert_eq!(d.catalog.get(0).and_then(|i| i.category.as_deref()), Some("Nail Polish"),);
    // Test prefix = validation prefix + validation target.
    assert_eq!(d.test[0].prefix.len(), d.valid[0].prefix.len() + 1);
    assert_eq!(d.test[0].prefix.last().map(|e| e.item), Some(d.valid[0].target));

    // Sampled protocol: popularity well above chance (HR@10 = 0.1) on uniform 1+99.
    let pop = Popularity::fit(&d.train, d.catalog.len());
    let sampler = CandidateSampler::new(SamplerSpec::uniform_99(2024), &d.train, d.catalog.len());
    let m = evaluate_rerank(&pop, &d.test, &sampler);
    println!("popularity, uniform 1+99: {m}");
    assert!(m.hr_at_10 > 0.2, "{m}");
    // Full ranking with history excluded.
    let knn = ItemKnn::fit(&d.train, d.catalog.len());
    let m = evaluate_full(&knn, &d.test, d.catalog.len(), 512, true);
    println!("{} full (exclude history): {m}", knn.name());
    assert!(m.hr_at_10 > 0.01, "{m}");
    Ok(())
}

/// The demo's catalog (`tests/data/amazon-beauty`, cut from the S3-Rec files): it imports with
/// the full files' importer, its counts are those its README states, and its text is clean
/// (no HTML entities on the demo's cards).
#[test]
fn bundled_beauty_sample_counts_and_clean_text() -> Result<()> {
    let dir = bundled_slice().with_file_name("amazon-beauty");
    let imp = import_beauty(&dir)?;
    let d = &imp.dataset;
    assert_eq!(d.catalog.len(), 8_017);
    assert_eq!(d.test.len(), 2_000);
    assert_eq!(imp.summary.events_by_kind[EventKind::View as usize], 24_226);
    let first = d.catalog.get(0).expect("item 1");
    assert_eq!(first.text, "OPI Makeup Nails Nail Polish nail lacquer simmer and shimmer");
    assert_eq!(first.category.as_deref(), Some("Nail Polish"));
    let oreal = d.catalog.items().iter().filter(|i| i.text.starts_with("L'Oreal Paris")).count();
    assert!(oreal > 0, "entities decoded: L'Oreal, not L&#39;Oreal");
    for item in d.catalog.items() {
        let entity = ["&amp;", "&#39;", "&quot;", "&reg;"].iter().find(|e| item.text.contains(**e));
        assert!(entity.is_none(), "item {}: {entity:?} in {:?}", item.id, item.text);
    }
    Ok(())
}

#[test]
fn retailrocket_counts() -> Result<()> {
    let Some(dir) = dataset("retailrocket") else { return Ok(()) };
    let test = retailrocket::file_stats(&dir.join("retailrocket_test.txt"))?;
    assert_eq!(test.rows, 38_741);
    assert_eq!(test.by_kind, [36_003, 2_128, 610]);
    assert_eq!(test.sessions, 12_213);
    let tv = retailrocket::file_stats(&dir.join("retailrocket_train_valid.txt"))?;
    assert_eq!(tv.rows, 43_231);
    // The swapped header is handled: item ids of the two files agree on shared rows.
    let first_tv = retailrocket::read_file(&dir.join("retailrocket_train_valid.txt"))?;
    let first_test = retailrocket::read_file(&dir.join("retailrocket_test.txt"))?;
    assert_eq!(first_tv[0], first_test[0]);

    let imp = import_retailrocket(&dir)?;
    println!("{}", imp.summary);
    let d = &imp.dataset;
    assert_eq!(imp.summary.events_by_kind.iter().sum::<usize>(), 46_350);
    assert_eq!(d.catalog.len(), 13_882);
    assert_eq!(imp.summary.categories, 743);
    assert!(imp.summary.events_by_kind[EventKind::AddToCart as usize] > 2_000);
    assert!(imp.summary.events_by_kind[EventKind::Purchase as usize] > 600);
    assert!(!d.test.is_empty() && !d.valid.is_empty());
    assert!(d.test.iter().all(|c| !c.prefix.is_empty()));
    assert!(d.train.iter().any(|s| s.events.iter().any(|e| e.kind == EventKind::Purchase)));
    for s in &d.train {
        assert!(s.events.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    }
    Ok(())
}
