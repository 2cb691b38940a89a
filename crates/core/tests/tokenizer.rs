//! The item-text tokenizer on real catalog text (Amazon Beauty titles and category paths).

use std::io::Write;

use sessionrank_core::ItemTokenizer;
use sessionrank_core::tokenizer::{PAD_ID, UNK_ID};
use sessionrank_data::import::import_beauty;
use sessionrank_data::{DATA_DIR_ENV, default_data_dir};

/// Amazon Beauty's item texts, or `None` when the dataset is absent: the test then skips with
/// a message written straight to stderr (the harness hides captured output of passing tests).
/// Under `CI=true` an absent dataset fails the test instead, so CI cannot pass without it.
fn beauty_texts() -> Option<Vec<String>> {
    let dir = default_data_dir().join("amazon-beauty");
    if !dir.is_dir() {
        let missing = format!("{} not found (set {DATA_DIR_ENV})", dir.display());
        let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(!in_ci, "CI=true, so this test may not skip: {missing}");
        let test = std::thread::current().name().unwrap_or("a test").to_string();
        let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {missing}");
        return None;
    }
    let imported = import_beauty(&dir).expect("import beauty");
    Some(imported.dataset.catalog.items().iter().map(|i| i.text.clone()).collect())
}

#[test]
fn round_trip_on_real_item_text() {
    let Some(texts) = beauty_texts() else { return };
    let tok = ItemTokenizer::train(texts.iter().map(String::as_str), 20_000, 2).expect("train");
    assert!(tok.vocab_size() > 1000, "vocabulary of {} words", tok.vocab_size());
    let reloaded =
        ItemTokenizer::from_json(tok.to_json().expect("json").as_bytes()).expect("reload");
    assert_eq!(reloaded.vocab_size(), tok.vocab_size());
    let mut unknown = 0usize;
    let mut total = 0usize;
    for text in &texts {
        let a = tok.encode(text, 64).expect("encode");
        assert_eq!(
            a,
            reloaded.encode(text, 64).expect("encode"),
            "same ids after reload for {text:?}"
        );
        assert!(!a.contains(&PAD_ID));
        unknown += a.iter().filter(|&&t| t == UNK_ID).count();
        total += a.len();
        // Known words decode back to the lower-cased text's words.
        if !a.contains(&UNK_ID) && !a.is_empty() {
            let decoded = tok.decode(&a).expect("decode");
            let words: Vec<String> = decoded.split_whitespace().map(str::to_string).collect();
            assert!(
                words.iter().all(|w| text.to_lowercase().contains(w.as_str())),
                "{decoded:?} vs {text:?}"
            );
        }
    }
    assert!((unknown as f64) < 0.05 * total as f64, "{unknown} of {total} tokens unknown");
}

#[test]
fn truncation_empty_text_and_unseen_words() {
    let tok = ItemTokenizer::train(
        ["red nail polish", "blue nail polish", "red lipstick"].into_iter(),
        100,
        1,
    )
    .expect("train");
    assert_eq!(tok.encode("", 8).expect("encode"), Vec::<u32>::new());
    assert_eq!(tok.encode("red nail polish red", 2).expect("encode").len(), 2);
    assert_eq!(tok.encode("zebra", 8).expect("encode"), vec![UNK_ID]);
    assert_eq!(
        tok.encode("RED", 8).expect("encode"),
        tok.encode("red", 8).expect("encode"),
        "lower-cased"
    );
}

#[test]
fn a_foreign_tokenizer_json_is_rejected() {
    assert!(ItemTokenizer::from_json(b"{\"not\": \"a tokenizer\"}").is_err());
    assert!(ItemTokenizer::from_json(b"").is_err());
}

/// Reproducers found by fuzzing (`crates/fuzz`, target `bundle`): the `tokenizers` crate
/// panicked on these bundle files instead of returning an error.
#[test]
fn malformed_tokenizer_files_are_errors_not_panics() {
    use sessionrank_core::CoreError;
    let path =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/bundle-slice/tokenizer.json");
    let good = std::fs::read(path).expect("the committed tokenizer");
    assert!(ItemTokenizer::from_json(&good).is_ok());
    let text = String::from_utf8(good).expect("UTF-8");
    // A byte that is no JSON where the decoder is (tokenizers: `expect("Helper")`).
    let mut broken = text.replacen("\"decoder\":null", "\"decoder\":#ull", 1).into_bytes();
    let at = broken.iter().position(|&b| b == b'#').expect("replaced");
    broken[at] = 0x92;
    let r = ItemTokenizer::from_json(&broken);
    assert!(matches!(r, Err(CoreError::InvalidFile { .. })), "{r:?}");
    // A Precompiled normalizer whose charsmap does not parse (`expect("Precompiled")`).
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    v["normalizer"] = serde_json::json!({"type": "Precompiled", "precompiled_charsmap": "x"});
    let r = ItemTokenizer::from_json(v.to_string().as_bytes());
    assert!(matches!(r, Err(CoreError::InvalidFile { .. })), "{r:?}");
}

/// Reproducer found by fuzzing (`crates/fuzz`, target `bundle`): a vocabulary with a gap
/// (`"hat": 8` among 6 words) gave token ids past the model's token table, and the
/// embedding's gather panicked. The file is refused now.
#[test]
fn token_ids_past_the_vocabulary_are_refused() {
    let path =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/bundle-slice/tokenizer.json");
    let text = std::fs::read_to_string(path).expect("the committed tokenizer");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let vocab = v["model"]["vocab"].as_object_mut().expect("a WordLevel vocabulary");
    let n = vocab.len();
    vocab.insert("zzz-gap".into(), serde_json::json!(n + 2));
    let r = ItemTokenizer::from_json(v.to_string().as_bytes());
    assert!(matches!(r, Err(sessionrank_core::CoreError::InvalidFile { .. })), "{r:?}");
}
