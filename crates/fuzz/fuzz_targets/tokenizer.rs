//! The item-text tokenizer (`crates/core/src/tokenizer.rs`): a bundle's `tokenizer.json`,
//! item text through the committed bundle's tokenizer, and a vocabulary trained on a catalog's
//! text.
//!
//! Input: the first byte picks the case — 0: the rest is a `tokenizer.json` (then used on a
//! fixed text); 1: the rest is item text for the committed tokenizer; 2: the rest, one text a
//! line, trains a vocabulary that then encodes the same lines.
#![no_main]

use std::sync::OnceLock;

use sessionrank_core::ItemTokenizer;

fn committed() -> &'static ItemTokenizer {
    static T: OnceLock<ItemTokenizer> = OnceLock::new();
    T.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/bundle-slice/tokenizer.json"
        );
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        ItemTokenizer::from_json(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"))
    })
}

/// Ids the model may look up: inside the vocabulary, at most `max` of them.
fn check(t: &ItemTokenizer, text: &str, max: usize) {
    if let Ok(ids) = t.encode(text, max) {
        assert!(ids.len() <= max);
        let n = t.vocab_size();
        assert!(ids.iter().all(|&id| (id as usize) < n), "token id outside the vocabulary");
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    match pick % 3 {
        0 => {
            if let Ok(t) = ItemTokenizer::from_json(rest) {
                check(&t, "Red running shoe, size 42", 16);
                let _ = t.to_json();
            }
        }
        1 => check(committed(), &String::from_utf8_lossy(rest), usize::from(pick >> 2)),
        _ => {
            let text = String::from_utf8_lossy(rest);
            let lines: Vec<&str> = text.lines().collect();
            let vocab = usize::from(pick >> 2) * 4;
            if let Ok(t) = ItemTokenizer::train(lines.iter().copied(), vocab, 1) {
                for line in &lines {
                    check(&t, line, 16);
                }
            }
        }
    }
});
