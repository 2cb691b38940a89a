//! The session half of a re-rank kept between calls (`Reranker::prepare_cached`): reused only
//! for the same events in the model's window, and then the same answer as a fresh call.

mod common;

use common::repo_root;

use burn::tensor::Device;
use serde::Deserialize;
use sessionrank_core::reranker::Prepared;
use sessionrank_core::{Candidate, ModelBundle, Reranker, SessionEvent};
use sessionrank_data::EventKind;

#[derive(Deserialize)]
struct Golden {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    session: Vec<SessionEvent>,
    candidates: Vec<Candidate>,
}

/// The benchmark's browser bundle (width 64, 2 layers, a 50-event window) and its golden
/// inputs, whose events and candidates carry the full model's vectors as a page does.
fn fixture() -> (Reranker, Vec<Case>) {
    let dir = repo_root().join("tests/fixtures/bench-d64-l2-w50-browser");
    let bundle = ModelBundle::read_dir(&dir).expect("committed browser bundle");
    let reranker = Reranker::from_bundle(&bundle, &Device::flex()).expect("decodes");
    let golden: Golden = serde_json::from_slice(
        &std::fs::read(repo_root().join("tests/fixtures/parity-bench-d64-l2-w50.json"))
            .expect("read"),
    )
    .expect("parses");
    (reranker, golden.cases)
}

/// Scores by candidate id, in the candidates' order.
fn scores(prepared: Prepared, candidates: &[Candidate], d: usize) -> Vec<f32> {
    let Prepared::Pending(p) = prepared else { panic!("expected model scores") };
    let (s, t) = p.read().expect("scores and table");
    let ranking = p.finish(&s, &t, d).expect("finish");
    candidates
        .iter()
        .map(|c| ranking.items.iter().find(|i| i.item_id == c.item_id).expect("listed").score)
        .collect()
}

fn assert_close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-5 + 1e-5 * y.abs(), "{what}: {x} vs {y}");
    }
}

#[test]
fn a_kept_session_state_gives_the_fresh_answer_for_another_page() {
    let (reranker, cases) = fixture();
    let d = reranker.model_dim();
    let case = cases.iter().find(|c| c.name == "fifty_events").expect("fifty_events");
    let (_, state) =
        reranker.prepare_cached(&case.session, &case.candidates, None).expect("first call");
    let state = state.expect("a session state");
    // Another page: the same items in another order, with half of them only.
    let page: Vec<Candidate> = case.candidates.iter().rev().step_by(2).cloned().collect();
    let (reused, _) = reranker.prepare_cached(&case.session, &page, Some(&state)).expect("reused");
    let fresh = reranker.prepare(&case.session, &page).expect("fresh");
    assert_close(&scores(reused, &page, d), &scores(fresh, &page, d), "reused state");
}

#[test]
fn a_new_click_is_not_answered_from_the_old_state() {
    let (reranker, cases) = fixture();
    let d = reranker.model_dim();
    let case = cases.iter().find(|c| c.name == "five_events_mixed_kinds").expect("case");
    let (_, state) = reranker.prepare_cached(&case.session, &case.candidates, None).expect("first");
    let state = state.expect("a session state");
    let mut session = case.session.clone();
    let mut click = case.session[0].clone();
    click.kind = EventKind::AddToCart;
    click.timestamp = click.timestamp.map(|t| t + 3600);
    session.push(click);
    let (after, _) =
        reranker.prepare_cached(&session, &case.candidates, Some(&state)).expect("after");
    let stale = scores(
        reranker.prepare(&case.session, &case.candidates).expect("old session"),
        &case.candidates,
        d,
    );
    let fresh =
        scores(reranker.prepare(&session, &case.candidates).expect("fresh"), &case.candidates, d);
    let after = scores(after, &case.candidates, d);
    assert_close(&after, &fresh, "after a click");
    assert!(after.iter().zip(&stale).any(|(a, s)| (a - s).abs() > 1e-4), "the click counted");
}

#[test]
fn events_beyond_the_window_neither_count_nor_fail() {
    let (reranker, cases) = fixture();
    let d = reranker.model_dim();
    let case = cases.iter().find(|c| c.name == "fifty_events").expect("fifty_events");
    // An old event with a wrong-length vector before the 50-event window: not the model's
    // input, so neither an error nor a change.
    let mut session = vec![SessionEvent {
        item_id: "old".into(),
        kind: EventKind::View,
        timestamp: Some(1),
        content: None,
        vector: Some(vec![1.0; 3]),
    }];
    session.extend(case.session.iter().cloned());
    let longer =
        scores(reranker.prepare(&session, &case.candidates).expect("longer"), &case.candidates, d);
    let window = scores(
        reranker.prepare(&case.session, &case.candidates).expect("window"),
        &case.candidates,
        d,
    );
    assert_close(&longer, &window, "older events");
}

/// Click by click inside the window, each call continuing the last call's state (the
/// encoder's kept keys and values), the scores are a fresh call's every time; and past the
/// window, where it slides, too.
#[test]
fn click_by_click_the_continued_state_gives_the_fresh_answer() {
    let (reranker, cases) = fixture();
    let d = reranker.model_dim();
    let case = cases.iter().find(|c| c.name == "fifty_events").expect("fifty_events");
    let mut session: Vec<SessionEvent> = Vec::new();
    let mut state = None;
    // 55 clicks: the 50-event window fills, then slides five times.
    for k in 0..55 {
        let mut click = case.session[k % case.session.len()].clone();
        click.timestamp = Some(1_700_000_000 + 20 * k as i64);
        session.push(click);
        let (continued, next) =
            reranker.prepare_cached(&session, &case.candidates, state.as_ref()).expect("continued");
        state = next;
        let fresh = reranker.prepare(&session, &case.candidates).expect("fresh");
        assert_close(
            &scores(continued, &case.candidates, d),
            &scores(fresh, &case.candidates, d),
            &format!("click {k}"),
        );
    }
}
