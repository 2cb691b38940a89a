//! The browser package's input in its native form: the session (as the package stores it in
//! `sessionStorage`: `{"layout": 1, "events": [SessionEvent]}`), a candidate page and the
//! shop's rules, re-ranked by the committed test bundle's browser bundle and its full bundle,
//! as a click-by-click sequence of calls that reuse the session state (`prepare_cached`).
//!
//! Input: JSON `{"session": …, "candidates": […], "rules": {…}}` (the stored-session object,
//! or a bare event list). The package's JS conversions (`crates/wasm/src/shapes.rs`) build
//! these same core types; what they do not check, this target finds.
#![no_main]

use serde::Deserialize;
use sessionrank_core::reranker::{Prepared, upstream_with};
use sessionrank_core::{Candidate, Reranker, Rules, SessionEvent};
use sessionrank_fuzz::engines;

#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Layout { layout: u32, events: Vec<SessionEvent> },
    Events(Vec<SessionEvent>),
}

#[derive(Deserialize)]
struct Input {
    session: Stored,
    candidates: Vec<Candidate>,
    #[serde(default)]
    rules: Rules,
}

/// One page as the package re-ranks it: the model's window of the stored session, the
/// session state of the previous call reused where it may be.
fn calls(engine: &Reranker, events: &[SessionEvent], candidates: &[Candidate], rules: &Rules) {
    let window = engine.manifest().config.max_len;
    let mut kept = None;
    // The session one click at a time, then the whole window once more (a reload).
    for end in (0..=events.len()).chain(std::iter::once(events.len())) {
        let session = &events[end.saturating_sub(window)..end];
        let Ok((prepared, state)) = engine.prepare_cached(session, candidates, kept.as_ref())
        else {
            return;
        };
        kept = state;
        let ranking = match prepared {
            Prepared::Upstream(r) => upstream_with(r, rules, &engine.rule_items(candidates)),
            Prepared::Pending(p) => {
                let Ok((scores, table)) = p.read() else { return };
                let list = engine.rule_items(candidates);
                p.finish_with(&scores, &table, engine.model_dim(), rules, list)
            }
        };
        if let Ok(r) = ranking {
            // Every candidate comes back once: shown or hidden, never lost or doubled.
            assert_eq!(r.items.len() + r.hidden.len(), candidates.len());
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(input) = serde_json::from_slice::<Input>(data) else { return };
    let events = match input.session {
        Stored::Layout { layout: 1, events } => events,
        Stored::Layout { .. } => Vec::new(),
        Stored::Events(events) => events,
    };
    // The package keeps at most 200 events.
    let events = &events[events.len().saturating_sub(200)..];
    if input.rules.validate().is_err() {
        return;
    }
    let (full, browser) = engines();
    calls(browser, events, &input.candidates, &input.rules);
    calls(full, events, &input.candidates, &input.rules);
    let _ = full.rerank_with(events, &input.candidates, &input.rules);
});
