//! The engine against the committed bundle (`tests/fixtures/bundle-slice`, trained on the
//! Diginetica metadata slice): decoding, verification, re-ranking and every bad input.

mod common;

use std::path::PathBuf;

use common::repo_root;

use burn::tensor::Device;
use sessionrank_core::{Candidate, CoreError, ItemContent, ModelBundle, Reranker, SessionEvent};
use sessionrank_data::EventKind;

fn fixture() -> PathBuf {
    repo_root().join("tests/fixtures/bundle-slice")
}

fn engine() -> (ModelBundle, Reranker) {
    let bundle = ModelBundle::read_dir(&fixture()).expect("committed bundle reads and verifies");
    let reranker = Reranker::from_bundle(&bundle, &Device::flex())
        .expect("weights decode into the current architecture");
    (bundle, reranker)
}

fn known_ids(bundle: &ModelBundle, n: usize) -> Vec<String> {
    bundle.items().expect("items.json").items.iter().take(n).map(|i| i.id.clone()).collect()
}

fn view(id: &str) -> SessionEvent {
    SessionEvent {
        item_id: id.to_string(),
        kind: EventKind::View,
        timestamp: None,
        content: None,
        vector: None,
    }
}

fn cand(id: &str) -> Candidate {
    Candidate { item_id: id.to_string(), content: None, vector: None, available: true }
}

#[test]
fn committed_bundle_decodes_into_the_current_architecture() {
    let (bundle, reranker) = engine();
    assert_eq!(reranker.encoder().n_items(), bundle.manifest.config.n_items);
    let ids = known_ids(&bundle, 120);
    let session: Vec<SessionEvent> = ids[..3].iter().map(|i| view(i)).collect();
    let cands: Vec<Candidate> = ids[20..120].iter().map(|i| cand(i)).collect();
    let r = reranker.rerank(&session, &cands).expect("rerank");
    assert!(r.personalised);
    assert_eq!(r.items.len(), 100);
    assert!(r.items.windows(2).all(|w| w[0].score >= w[1].score), "sorted by score");
    let mut out: Vec<&str> = r.items.iter().map(|i| i.item_id.as_str()).collect();
    out.sort_unstable();
    let mut inp: Vec<&str> = cands.iter().map(|c| c.item_id.as_str()).collect();
    inp.sort_unstable();
    assert_eq!(out, inp, "same ids, re-ordered");
    assert!(r.items.iter().any(|i| !i.because.is_empty()), "explanations are produced");
}

#[test]
fn rerank_is_deterministic_and_session_dependent() {
    let (bundle, reranker) = engine();
    let ids = known_ids(&bundle, 200);
    let cands: Vec<Candidate> = ids[100..200].iter().map(|i| cand(i)).collect();
    let a1 = reranker.rerank(&[view(&ids[0]), view(&ids[1])], &cands).expect("rerank");
    let a2 = reranker.rerank(&[view(&ids[0]), view(&ids[1])], &cands).expect("rerank");
    assert_eq!(a1, a2);
    let b = reranker.rerank(&[view(&ids[50]), view(&ids[51])], &cands).expect("rerank");
    assert_ne!(
        a1.items.iter().map(|i| &i.item_id).collect::<Vec<_>>(),
        b.items.iter().map(|i| &i.item_id).collect::<Vec<_>>()
    );
}

#[test]
fn empty_session_returns_upstream_order_with_a_reason() {
    let (bundle, reranker) = engine();
    let ids = known_ids(&bundle, 10);
    let cands: Vec<Candidate> = ids.iter().map(|i| cand(i)).collect();
    let r = reranker.rerank(&[], &cands).expect("rerank");
    assert!(!r.personalised);
    assert!(r.reason.is_some());
    assert_eq!(r.items.iter().map(|i| i.item_id.clone()).collect::<Vec<_>>(), ids);
}

#[test]
fn bad_candidate_lists_name_the_field() {
    let (bundle, reranker) = engine();
    let ids = known_ids(&bundle, 5);
    let s = [view(&ids[0])];
    let field = |e: CoreError| match e {
        CoreError::InvalidInput { field, .. } => field,
        other => panic!("expected InvalidInput, got {other}"),
    };
    assert_eq!(
        field(reranker.rerank(&s, &[]).expect_err("a bad input must be refused")),
        "candidates"
    );
    let too_many: Vec<Candidate> = (0..1001).map(|i| cand(&format!("x{i}"))).collect();
    assert_eq!(
        field(reranker.rerank(&s, &too_many).expect_err("a bad input must be refused")),
        "candidates"
    );
    let dup = [cand(&ids[1]), cand(&ids[2]), cand(&ids[1])];
    assert_eq!(
        field(reranker.rerank(&s, &dup).expect_err("a bad input must be refused")),
        "candidates[2].item_id"
    );
    assert_eq!(
        field(reranker.rerank(&s, &[cand(" ")]).expect_err("a bad input must be refused")),
        "candidates[0].item_id"
    );
}

#[test]
fn unknown_items_are_scored_from_their_content() {
    let (bundle, reranker) = engine();
    let items = bundle.items().expect("items");
    let ids = known_ids(&bundle, 3);
    // A new item described like a known one scores like an item, not like padding.
    let known = &items.items[1];
    let twin = Candidate {
        item_id: "new-sku-1".into(),
        content: Some(ItemContent {
            text: known.text.clone(),
            category: known.category.clone(),
            price_level: known.price_level,
        }),
        vector: None,
        available: true,
    };
    let bare = cand("new-sku-2");
    let r = reranker
        .rerank(&[view(&ids[0])], &[twin, bare, cand(&ids[2])])
        .expect("unknown ids are accepted");
    assert_eq!(r.items.len(), 3);
    assert!(r.items.iter().all(|i| i.score.is_finite()));
    let s =
        |id: &str| r.items.iter().find(|i| i.item_id == id).map(|i| i.score).unwrap_or(f32::NAN);
    assert_ne!(s("new-sku-1"), s("new-sku-2"), "content changes the vector");
}

#[test]
fn nan_and_negative_prices_are_rejected() {
    assert!(ItemContent::price_level_of(f64::NAN, "price").is_err());
    assert!(ItemContent::price_level_of(-1.0, "price").is_err());
    assert!(ItemContent::price_level_of(f64::INFINITY, "price").is_err());
    assert_eq!(ItemContent::price_level_of(0.0, "price").ok(), Some(0));
    assert_eq!(ItemContent::price_level_of(100.0, "price").ok(), Some(6));
    assert_eq!(ItemContent::price_level_of(1e12, "price").ok(), Some(15));
}

fn copy_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(fixture()).expect("fixture dir").flatten() {
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy");
    }
    dir
}

#[test]
fn tampered_truncated_or_foreign_bundles_are_rejected() {
    // Tampered weights: one byte flipped.
    let d = copy_fixture();
    let w = d.path().join("weights.bpk");
    let mut bytes = std::fs::read(&w).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&w, &bytes).expect("write");
    assert!(
        matches!(ModelBundle::read_dir(d.path()), Err(CoreError::ChecksumMismatch { file, .. }) if file == "weights.bpk")
    );
    // Truncated tokenizer.
    let d = copy_fixture();
    let t = d.path().join("tokenizer.json");
    let bytes = std::fs::read(&t).expect("read");
    std::fs::write(&t, &bytes[..bytes.len() / 3]).expect("write");
    assert!(
        matches!(ModelBundle::read_dir(d.path()), Err(CoreError::ChecksumMismatch { file, .. }) if file == "tokenizer.json")
    );
    // Another format version.
    let d = copy_fixture();
    let m = d.path().join("manifest.json");
    let text = std::fs::read_to_string(&m).expect("read").replacen(
        "\"format_version\": 1",
        "\"format_version\": 99",
        1,
    );
    std::fs::write(&m, text).expect("write");
    assert!(matches!(
        ModelBundle::read_dir(d.path()),
        Err(CoreError::UnsupportedFormat { found: 99, .. })
    ));
    // Missing file.
    let d = copy_fixture();
    std::fs::remove_file(d.path().join("items.json")).expect("rm");
    assert!(matches!(ModelBundle::read_dir(d.path()), Err(CoreError::Io { .. })));
    // Not JSON at all.
    assert!(matches!(
        ModelBundle::parse_manifest(b"<html>404</html>"),
        Err(CoreError::InvalidFile { .. })
    ));
}

#[test]
fn weights_that_do_not_fit_the_config_are_a_clear_error() {
    let (mut bundle, _) = engine();
    bundle.manifest.config.d_model = 48;
    bundle.manifest.config.d_ff = 96;
    let err = Reranker::from_bundle(&bundle, &Device::flex())
        .expect_err("weights of another shape must be refused");
    assert!(matches!(err, CoreError::Weights(_)), "{err}");
    bundle.manifest.config.n_heads = 5;
    assert!(matches!(
        Reranker::from_bundle(&bundle, &Device::flex()),
        Err(CoreError::InvalidConfig(_))
    ));
}

/// The browser bundle: the full model without its catalog-sized tables.
#[test]
fn the_browser_bundle_drops_the_catalog_tables_and_keeps_the_version() {
    let (bundle, _) = engine();
    let browser = bundle.browser().expect("derive");
    assert_eq!(browser.manifest.kind, sessionrank_core::BundleKind::Browser);
    assert_eq!(browser.manifest.model_version, bundle.manifest.model_version);
    assert_eq!(
        browser.files.keys().map(String::as_str).collect::<Vec<_>>(),
        ["categories.json", "weights.bpk"]
    );
    let (full_w, browser_w) =
        (bundle.files["weights.bpk"].len(), browser.files["weights.bpk"].len());
    let c = &bundle.manifest.config;
    // The id and token tables minus their row 0 are gone (up to the burnpack header).
    let cut = (c.n_items + c.vocab_size - 1) * c.d_model * 4;
    assert!(full_w - browser_w + 4096 >= cut, "{full_w} → {browser_w} bytes, {cut} expected to go");
    assert!(browser_w < 200_000, "the slice's browser weights stay small: {browser_w} bytes");
    assert_eq!(browser.manifest.config.n_items, 0);
    assert_eq!(browser.manifest.config.vocab_size, 1);
    // Derivation is idempotent on a browser bundle and survives a write/read round trip.
    let dir = tempfile::tempdir().expect("tempdir");
    browser.browser().expect("again").write_dir(&dir.path().join("b")).expect("write");
    let read = ModelBundle::read_dir(&dir.path().join("b")).expect("read");
    assert_eq!(read.files, browser.files);
    Reranker::from_bundle(&read, &Device::flex()).expect("browser bundle decodes");
}

/// Vectors given with the inputs are the item vectors: a browser bundle fed the full model's
/// vectors ranks exactly like the full bundle, explanations included.
#[test]
fn a_browser_bundle_with_the_full_models_vectors_ranks_like_the_full_bundle() {
    let (bundle, full) = engine();
    let browser = Reranker::from_bundle(&bundle.browser().expect("derive"), &Device::flex())
        .expect("decodes");
    let ids = known_ids(&bundle, 160);
    let with = |id: &str| Some(full.item_vectors(&[(id, None)]).expect("vector").remove(0));
    let session: Vec<SessionEvent> = ids[..4].iter().map(|i| view(i)).collect();
    let cands: Vec<Candidate> = ids[40..140].iter().map(|i| cand(i)).collect();
    let session_v: Vec<SessionEvent> =
        session.iter().map(|e| SessionEvent { vector: with(&e.item_id), ..e.clone() }).collect();
    let cands_v: Vec<Candidate> =
        cands.iter().map(|c| Candidate { vector: with(&c.item_id), ..c.clone() }).collect();
    let a = full.rerank(&session, &cands).expect("full");
    let b = browser.rerank(&session_v, &cands_v).expect("browser");
    let ids_of = |r: &sessionrank_core::Ranking| {
        r.items.iter().map(|i| i.item_id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(ids_of(&a), ids_of(&b));
    for (x, y) in a.items.iter().zip(&b.items) {
        assert!((x.score - y.score).abs() <= 1e-5, "{} vs {}", x.score, y.score);
        assert_eq!(
            x.because.iter().map(|b| &b.item_id).collect::<Vec<_>>(),
            y.because.iter().map(|b| &b.item_id).collect::<Vec<_>>()
        );
    }
    // Without vectors the browser bundle knows no item: still a ranking, not an error.
    let blind = browser.rerank(&session, &cands).expect("no vectors");
    assert_eq!(blind.items.len(), 100);
    assert!(blind.items.iter().all(|i| i.score.is_finite()));
}

#[test]
fn bad_vectors_name_the_field() {
    let (bundle, reranker) = engine();
    let ids = known_ids(&bundle, 3);
    let d = bundle.manifest.config.d_model;
    let field =
        |session: &[SessionEvent], cands: &[Candidate]| match reranker.rerank(session, cands) {
            Err(CoreError::InvalidInput { field, .. }) => field,
            other => panic!("expected InvalidInput, got {other:?}"),
        };
    let short = Candidate { vector: Some(vec![0.5; d - 1]), ..cand(&ids[1]) };
    assert_eq!(field(&[view(&ids[0])], &[cand(&ids[2]), short]), "candidates[1].vector");
    let mut nan = vec![0.1; d];
    nan[4] = f32::NAN;
    let bad = Candidate { vector: Some(nan.clone()), ..cand(&ids[1]) };
    assert_eq!(field(&[view(&ids[0])], &[bad]), "candidates[0].vector[4]");
    let bad_event = SessionEvent { vector: Some(nan), ..view(&ids[0]) };
    assert_eq!(field(std::slice::from_ref(&bad_event), &[cand(&ids[1])]), "session[0].vector[4]");
    // Checked even when the session is empty (the call would otherwise succeed by accident).
    let inf = Candidate { vector: Some(vec![f32::INFINITY; d]), ..cand(&ids[1]) };
    assert_eq!(field(&[], &[inf]), "candidates[0].vector[0]");
}

/// Digests the caller computed (the browser's `crypto.subtle`) are checked exactly like the
/// ones computed here: a right one (in either case) passes, a wrong one is a checksum
/// mismatch naming the file, and a file without one is hashed here.
#[test]
fn digests_given_by_the_caller_are_checked_like_computed_ones() {
    let dir = repo_root().join("tests/fixtures/bundle-slice-browser");
    let manifest = std::fs::read(dir.join("manifest.json")).expect("manifest");
    let files: std::collections::BTreeMap<String, Vec<u8>> = ["weights.bpk", "categories.json"]
        .into_iter()
        .map(|n| (n.to_string(), std::fs::read(dir.join(n)).expect("file")))
        .collect();
    let weights = sessionrank_core::bundle::sha256_hex(&files["weights.bpk"]);
    let given = |d: &str| [("weights.bpk".to_string(), d.to_string())].into_iter().collect();
    ModelBundle::from_parts_with_digests(&manifest, files.clone(), &given(&weights))
        .expect("the right digest");
    ModelBundle::from_parts_with_digests(&manifest, files.clone(), &given(&weights.to_uppercase()))
        .expect("hex case does not matter");
    let wrong = "0".repeat(64);
    match ModelBundle::from_parts_with_digests(&manifest, files.clone(), &given(&wrong)) {
        Err(CoreError::ChecksumMismatch { file, actual, .. }) => {
            assert_eq!(file, "weights.bpk");
            assert_eq!(actual, wrong);
        }
        other => panic!("a wrong digest was accepted: {:?}", other.map(|_| ())),
    }
    // Tampered bytes with no digest given are hashed here and refused.
    let mut tampered = files;
    if let Some(b) = tampered.get_mut("categories.json") {
        b.push(b' ');
    }
    assert!(matches!(
        ModelBundle::from_parts_with_digests(&manifest, tampered, &given(&weights)),
        Err(CoreError::ChecksumMismatch { file, .. }) if file == "categories.json"
    ));
}
