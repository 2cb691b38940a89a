//! The server's request bodies: `POST /v1/events` and `PUT /v1/items`, parsed and checked by
//! the server's own `routes/bodies.rs` (compiled here from its source file: that module names
//! nothing else of the server, so the fuzz build does not pull in the service).
//!
//! Input: the first byte picks the body (even: events, odd: items), the rest is the body.
#![no_main]

#[allow(dead_code)]
#[path = "../../../server/src/routes/bodies.rs"]
mod bodies;

use bodies::{MAX_ID_LEN, MAX_TIMESTAMP, event_batch, item_batch};

/// What every accepted id satisfies (the checks the handlers rely on downstream).
fn plain_id(s: &str) -> bool {
    !s.trim().is_empty() && s.len() <= MAX_ID_LEN && !s.chars().any(char::is_control)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else { return };
    if pick % 2 == 0 {
        if let Ok(events) = event_batch(body, 1000) {
            assert!(!events.is_empty() && events.len() <= 1000);
            for e in &events {
                assert!(plain_id(&e.session_id) && plain_id(&e.item_id));
                assert!((0..MAX_TIMESTAMP).contains(&e.timestamp));
            }
        }
    } else if let Ok(items) = item_batch(body, 1000) {
        assert!(!items.is_empty() && items.len() <= 1000);
        for it in &items {
            assert!(plain_id(&it.id));
            assert!(it.category.as_deref().is_none_or(plain_id));
            assert!(it.price_level.is_none_or(|l| l <= sessionrank_data::price::MAX_PRICE_LEVEL));
        }
    }
});
