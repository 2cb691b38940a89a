//! The engine's per-call cost on this machine, natively (the browser's figures are
//! `scripts/bench-shopper`'s): a click (one more event, then a re-rank continuing the kept
//! session state), a click that slides a full window, and a warm re-rank of an unchanged
//! session, on a committed browser bundle and its golden page of 100 candidates.
//!
//! Each figure is the median over batches of the batch mean, the least disturbed figure on a
//! shared machine. Usage:
//! `cargo run --release -p sessionrank-core --example per_click [bundle dir] [golden file]`

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::Device;
use serde::Deserialize;
use sessionrank_core::reranker::{Prepared, SessionState};
use sessionrank_core::{Candidate, ModelBundle, Reranker, SessionEvent};

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

/// One call as the browser makes it: prepare (continuing `state`), read back, rank.
fn call(
    r: &Reranker,
    session: &[SessionEvent],
    candidates: &[Candidate],
    state: &mut Option<SessionState>,
) -> usize {
    let (prepared, next) = r.prepare_cached(session, candidates, state.as_ref()).expect("call");
    *state = next;
    match prepared {
        Prepared::Upstream(r) => r.items.len(),
        Prepared::Pending(p) => {
            let (scores, table) = p.read().expect("read");
            p.finish(&scores, &table, r.model_dim()).expect("finish").items.len()
        }
    }
}

/// Median over `batches` of the mean time of `per` calls of `f`, in milliseconds.
fn median_ms(batches: usize, per: usize, mut f: impl FnMut()) -> f64 {
    let mut means: Vec<f64> = (0..batches)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per {
                f();
            }
            t.elapsed().as_secs_f64() * 1e3 / per as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    means[means.len() / 2]
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .map(PathBuf::from)
        .unwrap_or(root.join("tests/fixtures/bench-d64-l2-w50-browser"));
    let golden = args
        .next()
        .map(PathBuf::from)
        .unwrap_or(root.join("tests/fixtures/parity-bench-d64-l2-w50.json"));
    let t = Instant::now();
    let bundle = ModelBundle::read_dir(&dir).expect("a bundle directory");
    let r = Reranker::from_bundle(&bundle, &Device::flex()).expect("a valid bundle");
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let golden: Golden =
        serde_json::from_slice(&std::fs::read(&golden).expect("golden file")).expect("golden");
    let case = golden.cases.iter().find(|c| c.name == "fifty_events").expect("fifty_events");
    let window = r.manifest().config.max_len;
    let click = |k: usize| {
        let mut e = case.session[k % case.session.len()].clone();
        e.timestamp = Some(1_700_000_000 + 20 * k as i64);
        e
    };
    // Clicks inside the window: a session grows to the window, then a new one starts.
    let (mut session, mut state, mut k) = (Vec::new(), None, 0);
    let per_click = median_ms(21, 50, || {
        if session.len() >= window {
            session.clear();
            state = None;
        }
        session.push(click(k));
        k += 1;
        call(&r, &session, &case.candidates, &mut state);
    });
    // Clicks in a full window: every one slides it.
    let mut session: Vec<SessionEvent> = (0..window).map(click).collect();
    let mut state = None;
    let sliding = median_ms(11, 20, || {
        session.remove(0);
        session.push(click(k));
        k += 1;
        call(&r, &session, &case.candidates, &mut state);
    });
    let warm = median_ms(21, 50, || {
        call(&r, &session, &case.candidates, &mut state);
    });
    println!(
        "{{\"bundle\": {:?}, \"window\": {window}, \"candidates\": {}, \"per_click_ms\": {per_click:.4}, \
         \"per_click_sliding_ms\": {sliding:.4}, \"warm_ms\": {warm:.4}, \"load_ms\": {load_ms:.2}}}",
        dir.display().to_string(),
        case.candidates.len()
    );
}
