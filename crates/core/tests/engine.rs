//! The engine against the committed bundle (`tests/fixtures/bundle-slice`, trained on the
//! Diginetica metadata slice): decoding, verification, re-ranking and every bad input.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use sessionrank_core::{Candidate, CoreError, ItemContent, ModelBundle, Reranker, SessionEvent};
use sessionrank_data::EventKind;

/// The repository root, found at run time from the working directory (`cargo test` runs in the
/// package's directory): a compile-time path would go stale when checkouts share a build cache.
fn repo_root() -> PathBuf {
    let cwd = std::env::current_dir().expect("working directory");
    cwd.ancestors().find(|d| d.join("Trunk.toml").is_file()).map(Path::to_path_buf).expect("run inside the repository")
}

fn fixture() -> PathBuf {
    repo_root().join("tests/fixtures/bundle-slice")
}

fn engine() -> (ModelBundle, Reranker) {
    let bundle = ModelBundle::read_dir(&fixture()).expect("committed bundle reads and verifies");
    let reranker = Reranker::from_bundle(&bundle, &Device::flex()).expect("weights decode into the current architecture");
    (bundle, reranker)
}

fn known_ids(bundle: &ModelBundle, n: usize) -> Vec<String> {
    bundle.items().expect("items.json").items.iter().take(n).map(|i| i.id.clone()).collect()
}

fn view(id: &str) -> SessionEvent {
    SessionEvent { item_id: id.to_string(), kind: EventKind::View, timestamp: None, content: None }
}

fn cand(id: &str) -> Candidate {
    Candidate { item_id: id.to_string(), content: None }
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
    assert_ne!(a1.items.iter().map(|i| &i.item_id).collect::<Vec<_>>(), b.items.iter().map(|i| &i.item_id).collect::<Vec<_>>());
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
    assert_eq!(field(reranker.rerank(&s, &[]).unwrap_err()), "candidates");
    let too_many: Vec<Candidate> = (0..1001).map(|i| cand(&format!("x{i}"))).collect();
    assert_eq!(field(reranker.rerank(&s, &too_many).unwrap_err()), "candidates");
    let dup = [cand(&ids[1]), cand(&ids[2]), cand(&ids[1])];
    assert_eq!(field(reranker.rerank(&s, &dup).unwrap_err()), "candidates[2].item_id");
    assert_eq!(field(reranker.rerank(&s, &[cand(" ")]).unwrap_err()), "candidates[0].item_id");
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
        content: Some(ItemContent { text: known.text.clone(), category: known.category.clone(), price_level: known.price_level }),
    };
    let bare = cand("new-sku-2");
    let r = reranker.rerank(&[view(&ids[0])], &[twin, bare, cand(&ids[2])]).expect("unknown ids are accepted");
    assert_eq!(r.items.len(), 3);
    assert!(r.items.iter().all(|i| i.score.is_finite()));
    let s = |id: &str| r.items.iter().find(|i| i.item_id == id).map(|i| i.score).unwrap_or(f32::NAN);
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
    assert!(matches!(ModelBundle::read_dir(d.path()), Err(CoreError::ChecksumMismatch { file, .. }) if file == "weights.bpk"));
    // Truncated tokenizer.
    let d = copy_fixture();
    let t = d.path().join("tokenizer.json");
    let bytes = std::fs::read(&t).expect("read");
    std::fs::write(&t, &bytes[..bytes.len() / 3]).expect("write");
    assert!(matches!(ModelBundle::read_dir(d.path()), Err(CoreError::ChecksumMismatch { file, .. }) if file == "tokenizer.json"));
    // Another format version.
    let d = copy_fixture();
    let m = d.path().join("manifest.json");
    let text = std::fs::read_to_string(&m).expect("read").replacen("\"format_version\": 1", "\"format_version\": 99", 1);
    std::fs::write(&m, text).expect("write");
    assert!(matches!(ModelBundle::read_dir(d.path()), Err(CoreError::UnsupportedFormat { found: 99, .. })));
    // Missing file.
    let d = copy_fixture();
    std::fs::remove_file(d.path().join("items.json")).expect("rm");
    assert!(matches!(ModelBundle::read_dir(d.path()), Err(CoreError::Io { .. })));
    // Not JSON at all.
    assert!(matches!(ModelBundle::parse_manifest(b"<html>404</html>"), Err(CoreError::InvalidFile { .. })));
}

#[test]
fn weights_that_do_not_fit_the_config_are_a_clear_error() {
    let (mut bundle, _) = engine();
    bundle.manifest.config.d_model = 48;
    bundle.manifest.config.d_ff = 96;
    let err = Reranker::from_bundle(&bundle, &Device::flex()).unwrap_err();
    assert!(matches!(err, CoreError::Weights(_)), "{err}");
    bundle.manifest.config.n_heads = 5;
    assert!(matches!(Reranker::from_bundle(&bundle, &Device::flex()), Err(CoreError::InvalidConfig(_))));
}
