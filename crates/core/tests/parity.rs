//! Golden scores of the native engine on the committed bundle, shared with the browser.
//!
//! `tests/fixtures/parity.json` holds fixed inputs (sessions of real item ids from the
//! bundle's `items.json`, an unknown item with content, 100 candidates each) and the scores
//! the native CPU engine gave them on the full bundle. Every event and candidate carries the
//! item vector the full model computes for it — what the server ships with a candidate page —
//! except `new-sku-no-content`, which exercises the browser's own "unknown item" vector.
//!
//! This test checks that the full engine (ids only) still gives those scores, and that the
//! browser bundle `tests/fixtures/bundle-slice-browser` (no item table, vectors given) gives
//! them too; the browser test (`crates/wasm/tests/web.rs`) checks the wasm build does (max
//! |diff| ≤ 1e-4, identical top-10). After an intended change to the model or the bundle,
//! regenerate both fixtures with
//!
//! ```text
//! SESSIONRANK_REGENERATE=1 cargo test --release -p sessionrank-core --test parity
//! ```

mod common;

use std::path::{Path, PathBuf};

use common::repo_root;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use sessionrank_core::{Candidate, ItemContent, ModelBundle, Reranker, SessionEvent};
use sessionrank_data::EventKind;

/// A golden score is matched when |got − want| ≤ `TOLERANCE` + `RELATIVE_TOLERANCE`·|want|.
/// The golden file was computed on one CPU; another (an AMD EPYC, the wasm build, WebGPU) sums
/// in another order with other SIMD widths, which moves f32 scores in their last digits, more
/// for large scores (up to ~22 here). A change of model or inputs moves them by far more.
/// Both are stored in the golden file, so the browser tests apply the same rule.
const TOLERANCE: f32 = 1e-4;
/// See [`TOLERANCE`].
const RELATIVE_TOLERANCE: f32 = 1e-5;

/// An item vector recomputed today matches its stored golden value when
/// |got − want| ≤ `VECTOR_TOLERANCE` + `VECTOR_RELATIVE_TOLERANCE`·|want|: on another CPU the
/// content tower's sums round differently (the 7th significant digit moved on an AMD EPYC),
/// while a stale input (another item, other content) differs in its leading digits.
const VECTOR_TOLERANCE: f32 = 1e-5;
/// See [`VECTOR_TOLERANCE`].
const VECTOR_RELATIVE_TOLERANCE: f32 = 1e-4;

/// `got` is `want` up to `abs` + `rel`·|want|.
fn close(got: f32, want: f32, abs: f32, rel: f32) -> bool {
    (got - want).abs() <= abs + rel * want.abs()
}

#[derive(Debug, Serialize, Deserialize)]
struct Golden {
    /// What produced the expected values.
    command: String,
    /// `model_version` of the bundle the scores belong to.
    model_version: String,
    /// Absolute part of the score tolerance ([`TOLERANCE`]).
    tolerance: f32,
    /// Relative part of the score tolerance ([`RELATIVE_TOLERANCE`]).
    relative_tolerance: f32,
    cases: Vec<Case>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Case {
    name: String,
    session: Vec<SessionEvent>,
    candidates: Vec<Candidate>,
    expected: Expected,
}

#[derive(Debug, Serialize, Deserialize)]
struct Expected {
    personalised: bool,
    /// Score of each candidate, in the order of `candidates`.
    scores: Vec<f32>,
    /// The first ten ids of the re-ranked list.
    top10: Vec<String>,
}

fn golden_path() -> PathBuf {
    repo_root().join("tests/fixtures/parity.json")
}

fn engine() -> (ModelBundle, Reranker) {
    let bundle = ModelBundle::read_dir(&repo_root().join("tests/fixtures/bundle-slice"))
        .expect("committed bundle");
    let reranker = Reranker::from_bundle(&bundle, &Device::flex()).expect("bundle decodes");
    (bundle, reranker)
}

fn browser_dir() -> PathBuf {
    repo_root().join("tests/fixtures/bundle-slice-browser")
}

/// The item id whose vector the golden leaves out (the browser encodes it itself).
const NO_VECTOR: &str = "new-sku-no-content";

/// The inputs with each item's vector as the full model computes it (the server's page).
fn with_vectors(
    full: &Reranker,
    session: &[SessionEvent],
    candidates: &[Candidate],
) -> (Vec<SessionEvent>, Vec<Candidate>) {
    let vector = |id: &str, content: Option<&ItemContent>| {
        (id != NO_VECTOR).then(|| full.item_vectors(&[(id, content)]).expect("vector").remove(0))
    };
    let session = session
        .iter()
        .map(|e| SessionEvent { vector: vector(&e.item_id, e.content.as_ref()), ..e.clone() })
        .collect();
    let candidates = candidates
        .iter()
        .map(|c| Candidate { vector: vector(&c.item_id, c.content.as_ref()), ..c.clone() })
        .collect();
    (session, candidates)
}

fn strip_vectors(
    session: &[SessionEvent],
    candidates: &[Candidate],
) -> (Vec<SessionEvent>, Vec<Candidate>) {
    (
        session.iter().map(|e| SessionEvent { vector: None, ..e.clone() }).collect(),
        candidates.iter().map(|c| Candidate { vector: None, ..c.clone() }).collect(),
    )
}

fn event(id: &str, kind: EventKind, timestamp: Option<i64>) -> SessionEvent {
    SessionEvent { item_id: id.to_string(), kind, timestamp, content: None, vector: None }
}

fn cand(id: &str) -> Candidate {
    Candidate { item_id: id.to_string(), content: None, vector: None, available: true }
}

/// The fixed inputs: deterministic picks from the bundle's item index.
fn inputs(bundle: &ModelBundle) -> Vec<(String, Vec<SessionEvent>, Vec<Candidate>)> {
    let items = bundle.items().expect("items.json").items;
    let id = |i: usize| items[i % items.len()].id.clone();
    let list = |start: usize, step: usize| -> Vec<Candidate> {
        (0..100).map(|k| cand(&id(start + k * step))).collect()
    };
    let t0 = 1_700_000_000;
    let mut cases = Vec::new();

    cases.push((
        "one_view".to_string(),
        vec![event(&id(7), EventKind::View, Some(t0))],
        list(1000, 37),
    ));

    let kinds = [
        EventKind::View,
        EventKind::View,
        EventKind::AddToCart,
        EventKind::View,
        EventKind::Purchase,
    ];
    let gaps = [0, 12, 45, 300, 4000];
    let mut t = t0;
    let session: Vec<SessionEvent> = kinds
        .iter()
        .zip(gaps)
        .enumerate()
        .map(|(k, (&kind, gap))| {
            t += gap;
            event(&id(2000 + 13 * k), kind, Some(t))
        })
        .collect();
    cases.push(("five_events_mixed_kinds".to_string(), session, list(3000, 11)));

    // Longer than the model's max_len: only the last events count.
    let session: Vec<SessionEvent> = (0..50)
        .map(|k| event(&id(5000 + 7 * k), EventKind::View, Some(t0 + 20 * k as i64)))
        .collect();
    cases.push(("fifty_events".to_string(), session, list(6000, 3)));

    // Unknown items: one in the session (described like a known item), candidates with and
    // without content.
    let twin = &items[42];
    let content = ItemContent {
        text: twin.text.clone(),
        category: twin.category.clone(),
        price_level: twin.price_level,
    };
    let mut session = vec![event(&id(100), EventKind::View, Some(t0))];
    session.push(SessionEvent {
        item_id: "new-sku-session".into(),
        kind: EventKind::View,
        timestamp: Some(t0 + 30),
        content: Some(content),
        vector: None,
    });
    session.push(event(&id(101), EventKind::AddToCart, Some(t0 + 90)));
    let mut candidates = list(7000, 17);
    candidates[5] = Candidate {
        item_id: "new-sku-a".into(),
        content: Some(ItemContent {
            text: items[43].text.clone(),
            category: items[43].category.clone(),
            price_level: Some(7),
        }),
        vector: None,
        available: true,
    };
    candidates[50] = Candidate {
        item_id: "new-sku-b".into(),
        content: Some(ItemContent {
            text: "w2408 w26881".into(),
            category: None,
            price_level: None,
        }),
        vector: None,
        available: true,
    };
    candidates[99] = cand("new-sku-no-content");
    cases.push(("unknown_items".to_string(), session, candidates));

    // Repeats and no timestamps.
    let session: Vec<SessionEvent> =
        [300, 301, 300, 302, 300].iter().map(|&i| event(&id(i), EventKind::View, None)).collect();
    cases.push(("repeats_no_timestamps".to_string(), session, list(8000, 19)));

    cases.push(("empty_session".to_string(), Vec::new(), list(9000, 1)));
    cases
}

fn run(reranker: &Reranker, session: &[SessionEvent], candidates: &[Candidate]) -> Expected {
    let r = reranker.rerank(session, candidates).expect("rerank");
    let scores = candidates
        .iter()
        .map(|c| {
            r.items
                .iter()
                .find(|i| i.item_id == c.item_id)
                .map(|i| i.score)
                .expect("every candidate comes back")
        })
        .collect();
    Expected {
        personalised: r.personalised,
        scores,
        top10: r.items.iter().take(10).map(|i| i.item_id.clone()).collect(),
    }
}

/// Write `bundle`'s browser bundle to `browser_out` and its golden scores (the full engine,
/// ids only; inputs with the full model's vectors) to `golden_out`.
fn regenerate(
    bundle: &ModelBundle,
    reranker: &Reranker,
    browser_out: &Path,
    golden_out: &Path,
    command: &str,
    compact: bool,
) {
    bundle
        .browser()
        .expect("browser bundle")
        .write_dir(browser_out)
        .expect("write the browser bundle");
    let cases = inputs(bundle)
        .into_iter()
        .map(|(name, session, candidates)| {
            let expected = run(reranker, &session, &candidates);
            let (session, candidates) = with_vectors(reranker, &session, &candidates);
            Case { name, session, candidates, expected }
        })
        .collect();
    let golden = Golden {
        command: command.into(),
        model_version: bundle.manifest.model_version.clone(),
        tolerance: TOLERANCE,
        relative_tolerance: RELATIVE_TOLERANCE,
        cases,
    };
    // Compact: a d_model-64 student's pretty-printed vectors would double the file.
    let json = if compact {
        serde_json::to_string(&golden)
    } else {
        serde_json::to_string_pretty(&golden)
    }
    .expect("serialize");
    std::fs::write(golden_out, json + "\n").expect("write the golden file");
    eprintln!("wrote {} and {}", browser_out.display(), golden_out.display());
}

#[test]
fn native_engine_matches_the_golden_scores() {
    let (bundle, reranker) = engine();
    if std::env::var_os("SESSIONRANK_REGENERATE").is_some() {
        let command =
            "SESSIONRANK_REGENERATE=1 cargo test --release -p sessionrank-core --test parity";
        regenerate(&bundle, &reranker, &browser_dir(), &golden_path(), command, false);
    }
    let golden: Golden = serde_json::from_slice(
        &std::fs::read(golden_path())
            .expect("tests/fixtures/parity.json (regenerate: SESSIONRANK_REGENERATE=1)"),
    )
    .expect("parity.json parses");
    assert_eq!(
        golden.model_version, bundle.manifest.model_version,
        "parity.json belongs to another bundle: regenerate it"
    );
    assert_eq!(golden.cases.len(), inputs(&bundle).len());
    assert_eq!(
        (golden.tolerance, golden.relative_tolerance),
        (TOLERANCE, RELATIVE_TOLERANCE),
        "parity.json states the tolerance the browser tests apply: regenerate it"
    );
    let mut worst = 0.0f32;
    for case in &golden.cases {
        // The server's path: ids only, the full bundle encodes every item.
        let (session, candidates) = strip_vectors(&case.session, &case.candidates);
        worst = worst.max(check(&run(&reranker, &session, &candidates), case));
    }
    eprintln!("full bundle: max |diff| {worst:e}");
}

/// The browser's path, natively: the browser bundle (no item table) with the page's vectors.
#[test]
fn browser_bundle_with_vectors_matches_the_golden_scores() {
    let (bundle, _) = engine();
    let browser = ModelBundle::read_dir(&browser_dir()).expect("committed browser bundle");
    assert_eq!(browser.manifest.model_version, bundle.manifest.model_version);
    let reranker =
        Reranker::from_bundle(&browser, &Device::flex()).expect("browser bundle decodes");
    let golden: Golden =
        serde_json::from_slice(&std::fs::read(golden_path()).expect("parity.json"))
            .expect("parses");
    let mut worst = 0.0f32;
    for case in &golden.cases {
        worst = worst.max(check(&run(&reranker, &case.session, &case.candidates), case));
    }
    eprintln!("browser bundle: max |diff| {worst:e}");
}

/// The committed browser bundle is exactly what `ModelBundle::browser` derives from the
/// committed full bundle today, byte for byte (derivation is deterministic: the server may
/// derive a missing browser bundle on any instance and serve it under an immutable URL).
#[test]
fn committed_browser_bundle_is_the_derived_one() {
    let (bundle, _) = engine();
    let derived = bundle.browser().expect("derive");
    let again = bundle.browser().expect("derive again");
    assert_eq!(derived.files, again.files, "two derivations give the same bytes");
    let committed = ModelBundle::read_dir(&browser_dir()).expect("committed browser bundle");
    assert_eq!(derived.manifest_json().expect("json"), committed.manifest_json().expect("json"));
    assert_eq!(derived.files, committed.files);
}

/// Same personalisation, every score within the tolerance and the same top-10 up to near-ties,
/// against the golden case; returns the max |diff| (for the log).
fn check(got: &Expected, case: &Case) -> f32 {
    let name = &case.name;
    let want = &case.expected;
    assert_eq!(got.personalised, want.personalised, "{name}");
    assert_eq!(got.scores.len(), want.scores.len(), "{name}");
    for ((g, w), c) in got.scores.iter().zip(&want.scores).zip(&case.candidates) {
        assert!(
            close(*g, *w, TOLERANCE, RELATIVE_TOLERANCE),
            "{name}: {} scores {g}, golden {w} \
             (tolerance {TOLERANCE} + {RELATIVE_TOLERANCE}·|golden|)",
            c.item_id
        );
    }
    // Two candidates whose golden scores are within twice the tolerance may swap places on
    // another machine; any other difference in the top-10 is a real one.
    let golden_score = |id: &str| {
        case.candidates
            .iter()
            .position(|c| c.item_id == id)
            .map(|i| want.scores[i])
            .unwrap_or_else(|| panic!("{name}: {id} is not a candidate"))
    };
    assert_eq!(got.top10.len(), want.top10.len(), "{name}: top-10 length");
    for (k, (g, w)) in got.top10.iter().zip(&want.top10).enumerate() {
        let (sg, sw) = (golden_score(g), golden_score(w));
        assert!(
            g == w || close(sg, sw, 2.0 * TOLERANCE, 2.0 * RELATIVE_TOLERANCE),
            "{name}: top-10 position {k} is {g} (golden score {sg}), golden has {w} ({sw})\n\
             got {:?}\ngolden {:?}",
            got.top10,
            want.top10
        );
    }
    got.scores.iter().zip(&want.scores).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
}

/// The golden inputs are what `inputs` builds today (so the browser test, which only reads
/// the JSON, tests what this file documents).
#[test]
fn golden_inputs_are_current() {
    let (bundle, reranker) = engine();
    let golden: Golden =
        serde_json::from_slice(&std::fs::read(golden_path()).expect("parity.json"))
            .expect("parses");
    assert_eq!(golden.cases.len(), inputs(&bundle).len());
    for ((name, session, candidates), case) in inputs(&bundle).into_iter().zip(&golden.cases) {
        assert_eq!(name, case.name);
        assert_eq!(case.candidates.len(), 100, "{name}");
        // Ids, kinds, timestamps and content exactly; the vectors up to rounding.
        assert_eq!(
            strip_vectors(&session, &candidates),
            strip_vectors(&case.session, &case.candidates),
            "{name}"
        );
        let (with_session, with_candidates) = with_vectors(&reranker, &session, &candidates);
        let fresh = with_session.iter().map(|e| (&e.item_id, &e.vector));
        let stored = case.session.iter().map(|e| (&e.item_id, &e.vector));
        let fresh = fresh.chain(with_candidates.iter().map(|c| (&c.item_id, &c.vector)));
        let stored = stored.chain(case.candidates.iter().map(|c| (&c.item_id, &c.vector)));
        for ((id, got), (_, want)) in fresh.zip(stored) {
            assert_vector_close(got.as_deref(), want.as_deref(), &format!("{name}: {id}"));
        }
    }
}

/// `got` is the stored vector `want` up to [`VECTOR_TOLERANCE`] (both absent for the item the
/// browser encodes itself).
fn assert_vector_close(got: Option<&[f32]>, want: Option<&[f32]>, what: &str) {
    let (got, want) = match (got, want) {
        (Some(g), Some(w)) => (g, w),
        (None, None) => return,
        (g, w) => panic!("{what}: vector present today {}, stored {}", g.is_some(), w.is_some()),
    };
    assert_eq!(got.len(), want.len(), "{what}: vector length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            close(*g, *w, VECTOR_TOLERANCE, VECTOR_RELATIVE_TOLERANCE),
            "{what}: vector[{i}] is {g} today, {w} in the golden file \
             (tolerance {VECTOR_TOLERANCE} + {VECTOR_RELATIVE_TOLERANCE}·|golden|)"
        );
    }
}

/// The distilled Diginetica student (docs/distill.md) exactly as a browser downloads it: its
/// browser bundle and golden scores from its full bundle, which is too large to commit. The
/// browser test (`crates/wasm/tests/web.rs`) loads the same files in the wasm package. After a
/// new student, regenerate with
///
/// ```text
/// SESSIONRANK_STUDENT_BUNDLE=<full student bundle dir> \
///     cargo test --release -p sessionrank-core --test parity student
/// ```
#[test]
fn the_distilled_students_browser_bundle_matches_its_golden_scores() {
    committed_browser_bundle_matches(&CommittedBundle {
        dir: "tests/fixtures/student-diginetica-browser",
        golden: "tests/fixtures/parity-student.json",
        regenerate_env: "SESSIONRANK_STUDENT_BUNDLE",
        command: concat!(
            "SESSIONRANK_STUDENT_BUNDLE=<runs>/diginetica/student/bundle ",
            "cargo test --release -p sessionrank-core --test parity student"
        ),
    });
}

/// The browser benchmark's shape (`scripts/bench-browser`, issue 19): width 64, 2 layers, 2
/// heads, FFN 256 and a 50-event window, trained on the committed sample. Regenerate with:
///
/// ```text
/// sessionrank train diginetica-slice --data-dir tests/data --d-model 64 --layers 2 --heads 2 \
///     --d-ff 256 --max-len 50 --no-baselines --rerank-cases 0 --out <dir>
/// SESSIONRANK_BENCH_BUNDLE=<dir> cargo test --release -p sessionrank-core --test parity bench
/// ```
#[test]
fn the_benchmark_bundle_matches_its_golden_scores() {
    committed_browser_bundle_matches(&CommittedBundle {
        dir: "tests/fixtures/bench-d64-l2-w50-browser",
        golden: "tests/fixtures/parity-bench-d64-l2-w50.json",
        regenerate_env: "SESSIONRANK_BENCH_BUNDLE",
        command: concat!(
            "sessionrank train diginetica-slice --data-dir tests/data --d-model 64 --layers 2 ",
            "--heads 2 --d-ff 256 --max-len 50 --no-baselines --rerank-cases 0 --out <dir> && ",
            "SESSIONRANK_BENCH_BUNDLE=<dir> cargo test --release -p sessionrank-core --test ",
            "parity bench"
        ),
    });
}

/// A browser bundle committed without its full bundle (too large, or only a benchmark's), with
/// golden scores computed by that full bundle.
struct CommittedBundle {
    dir: &'static str,
    golden: &'static str,
    /// Names the full bundle to regenerate both from.
    regenerate_env: &'static str,
    command: &'static str,
}

/// The committed browser bundle, given the full model's vectors, scores as the full model did
/// (within the golden tolerances), and ships at most 1 MB of weights.
fn committed_browser_bundle_matches(c: &CommittedBundle) {
    let dir = repo_root().join(c.dir);
    let golden_file = repo_root().join(c.golden);
    if let Some(full) = std::env::var_os(c.regenerate_env) {
        let bundle = ModelBundle::read_dir(Path::new(&full)).expect("the full bundle");
        let reranker = Reranker::from_bundle(&bundle, &Device::flex()).expect("bundle decodes");
        regenerate(&bundle, &reranker, &dir, &golden_file, c.command, true);
    }
    let browser = ModelBundle::read_dir(&dir).expect("committed browser bundle");
    let weights = browser.files.get("weights.bpk").map(Vec::len).unwrap_or(0);
    assert!(weights <= 1_000_000, "{} ships {weights} bytes of weights, over 1 MB", c.dir);
    let reranker =
        Reranker::from_bundle(&browser, &Device::flex()).expect("browser bundle decodes");
    let golden: Golden =
        serde_json::from_slice(&std::fs::read(&golden_file).expect("golden file")).expect("parses");
    assert_eq!(
        golden.model_version, browser.manifest.model_version,
        "{} belongs to another model than {}",
        c.golden, c.dir
    );
    let mut worst = 0.0f32;
    for case in &golden.cases {
        worst = worst.max(check(&run(&reranker, &case.session, &case.candidates), case));
    }
    eprintln!("{}: {weights} weight bytes, max |diff| {worst:e}", c.dir);
}
