//! The seed inputs of every fuzz target: a tiny but complete full bundle and its browser
//! bundle (d 4, three items), the request bodies of the API docs, the first lines of the
//! committed dataset samples, a few candidate pages and tokenizer inputs. Written again after
//! a change to the bundle layout or the file formats by the `bundle` target itself (a plain
//! binary cannot link the instrumented crates without libFuzzer):
//!
//! ```sh
//! SESSIONRANK_FUZZ_SEEDS=crates/fuzz/seeds crates/fuzz/target/x86_64-unknown-linux-gnu/release/bundle
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use crate::join;
use anyhow::{Context, Result};
use burn::tensor::Device;
use sessionrank_core::bundle::{ITEMS, TOKENIZER, WEIGHTS};
use sessionrank_core::model::ModelConfig;
use sessionrank_core::weights::weights_bytes;
use sessionrank_core::{
    BundleKind, FeatureParams, ItemTokenizer, ItemsFile, Manifest, ModelBundle,
};
use sessionrank_data::Item;

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) -> Result<()> {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).with_context(|| format!("{d:?}"))?;
    std::fs::write(d.join(name), bytes).with_context(|| format!("{d:?}/{name}"))
}

/// The first `n` lines of a committed sample file.
fn head(path: &Path, n: usize) -> Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{path:?}"))?;
    Ok(text.lines().take(n).map(|l| format!("{l}\n")).collect())
}

fn tiny_bundle() -> Result<ModelBundle> {
    let items = vec![
        Item {
            id: "1".into(),
            text: "red shoe".into(),
            category: Some("shoes".into()),
            price_level: Some(3),
        },
        Item {
            id: "2".into(),
            text: "blue shoe".into(),
            category: Some("shoes".into()),
            price_level: None,
        },
        Item {
            id: "3".into(),
            text: "red hat".into(),
            category: Some("hats".into()),
            price_level: Some(1),
        },
    ];
    let tokenizer = ItemTokenizer::train(items.iter().map(|i| i.text.as_str()), 16, 1)?;
    let config = ModelConfig {
        n_items: items.len(),
        vocab_size: tokenizer.vocab_size(),
        n_categories: 2,
        d_model: 4,
        n_layers: 1,
        n_heads: 1,
        d_ff: 4,
        max_len: 4,
        max_tokens: 2,
        n_price_levels: 17,
        max_candidates: 4,
        dropout: 0.0,
        use_content: true,
        use_item_ids: true,
        logit_scale: None,
        list_context: false,
    };
    let model = config.init(&Device::flex());
    let mut files = BTreeMap::new();
    files.insert(WEIGHTS.to_string(), weights_bytes(&model)?);
    files.insert(TOKENIZER.to_string(), tokenizer.to_json()?.into_bytes());
    files.insert(ITEMS.to_string(), serde_json::to_vec(&ItemsFile { items })?);
    let manifest = Manifest {
        format_version: 0,
        kind: BundleKind::Full,
        model_version: "seed-1".into(),
        created_at: 0,
        dataset: "seed".into(),
        config,
        features: FeatureParams { max_tokens: 2 },
        files: BTreeMap::new(),
        metrics: serde_json::Value::Null,
    };
    Ok(ModelBundle::new(manifest, files))
}

/// Write every target's seeds under `dir/<target>/`.
pub fn write_seeds(dir: &Path) -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");

    // bundle: manifest, weights, tokenizer | categories, items.
    let full = tiny_bundle()?;
    let browser = full.browser()?;
    let file = |b: &ModelBundle, n: &str| b.files.get(n).cloned().unwrap_or_default();
    let m = full.manifest_json()?.into_bytes();
    let (w, t, i) = (file(&full, WEIGHTS), file(&full, TOKENIZER), file(&full, ITEMS));
    write(&dir, "bundle", "full", &join(&[&m, &w, &t, &i]))?;
    let m = browser.manifest_json()?.into_bytes();
    let (w, c) = (file(&browser, WEIGHTS), file(&browser, "categories.json"));
    write(&dir, "bundle", "browser", &join(&[&m, &w, &c]))?;

    // bodies: first byte even = events, odd = items.
    let bodies: [(&str, u8, &str); 4] = [
        (
            "events",
            0,
            r#"{"events": [{"session_id": "s1", "item_id": "123", "type": "view", "timestamp": 1732350000}, {"session_id": "s1", "item_id": "9", "type": "add_to_cart", "timestamp": 1732350060}]}"#,
        ),
        (
            "events-bad",
            0,
            r#"{"events": [{"session_id": "", "item_id": "1", "type": "like", "timestamp": -5, "x": 1}]}"#,
        ),
        (
            "items",
            1,
            r#"{"items": [{"id": "123", "text": "red running shoe", "category": "shoes", "price": 59.9}, {"id": "9", "price": "12.5"}, {"id": "7", "price_level": 3}]}"#,
        ),
        (
            "items-bad",
            1,
            r#"{"items": [{"id": "a", "price": "NaN"}, {"id": "a", "price_level": 99}]}"#,
        ),
    ];
    for (name, pick, body) in bodies {
        let mut bytes = vec![pick];
        bytes.extend_from_slice(body.as_bytes());
        write(&dir, "bodies", name, &bytes)?;
    }

    // import: first byte = importer, then its files.
    let inter = "session_id:token\titem_id:token\ttimestamp:float\tevent_type:token\n\
                 s1\ta\t3\tview\ns1\tb\t1\tview\ns2\tc\t0\tview\ns1\tc\t5\tpurchase\n\
                 s2\ta\t2\tadd_to_cart\ns2\tb\t4\tview\n";
    let item = "item_id:token\ttitle:token_seq\tcategories:token_seq\tprice:float\n\
                a\tred lipstick\tMakeup|Lips\t7\nb\tblue pen\t\t\n";
    let mut recbole = vec![0u8];
    recbole.extend(join(&[inter.as_bytes(), item.as_bytes()]));
    write(&dir, "import", "recbole", &recbole)?;
    let mut srgnn = vec![1u8];
    srgnn.extend(join(&[
        b"1\t10\n2\t10\n3\t11\n4\t12\n",
        b"1 2 3\n2 3\n3 4 1\n",
        b"1 2\t3\n3\t4\n",
    ]));
    write(&dir, "import", "diginetica", &srgnn)?;
    let slice = head(
        &root.join("tests/data/diginetica/slice-with-metadata/diginetica_train_valid.txt"),
        24,
    )?;
    let mut bytes = vec![2u8];
    bytes.extend(slice.as_bytes());
    write(&dir, "import", "diginetica-slice", &bytes)?;
    let meta = head(&root.join("tests/data/amazon-beauty/Beauty_item_meta.tsv"), 12)?;
    let seqs = "1 2 3 4\n2 3 5\n6 7 8 9 10\n";
    let mut bytes = vec![3u8];
    bytes.extend(join(&[meta.as_bytes(), seqs.as_bytes()]));
    write(&dir, "import", "beauty", &bytes)?;
    let rr_test = "Time\tUserId\tType\tItemId\tSessionId\tCatId\n\
                   1433221332\t1\tview\t100\t1\t5\n1433221400\t1\taddtocart\t101\t1\t5\n\
                   1433300000\t2\tview\t100\t2\t5\n";
    let rr_train = "Time\tUserId\tType\tCatId\tSessionId\tItemId\n\
                    1433200000\t3\tview\t100\t3\t5\n1433200100\t3\ttransaction\t101\t3\t6\n";
    let mut bytes = vec![4u8];
    bytes.extend(join(&[rr_test.as_bytes(), rr_train.as_bytes()]));
    write(&dir, "import", "retailrocket", &bytes)?;

    // browser: ids of the committed bundle (6, 9, 12, 19, 42) and unknown ones.
    let pages = [
        (
            "stored",
            r#"{"session": {"layout": 1, "events": [{"item_id": "6", "kind": "view", "timestamp": 1}, {"item_id": "9", "kind": "add_to_cart", "timestamp": 30}]}, "candidates": [{"item_id": "12"}, {"item_id": "19", "available": false}, {"item_id": "42", "content": {"category": "526", "price_level": 3}}, {"item_id": "new"}]}"#,
        ),
        (
            "rules",
            r#"{"session": [{"item_id": "6"}, {"item_id": "x", "content": {"text": "w664 w47446", "category": "380", "price": 12.5}}], "candidates": [{"item_id": "12"}, {"item_id": "19"}, {"item_id": "42"}, {"item_id": "9"}], "rules": {"pins": {"42": 0}, "exclude": ["9"], "boost": {"19": 0.5}, "bury": {"12": 0.2}, "categoryCap": {"max": 1, "top": 3}, "diversity": 0.3, "maxDisplacement": 2, "blend": 0.7}}"#,
        ),
        ("empty", r#"{"session": [], "candidates": [{"item_id": "6"}]}"#),
    ];
    for (name, json) in pages {
        write(&dir, "browser", name, json.as_bytes())?;
    }
    let mut vectors = String::from(r#"{"session": [{"item_id": "v", "vector": ["#);
    vectors.push_str(&vec!["0.1"; 32].join(","));
    vectors.push_str(r#"]}], "candidates": [{"item_id": "w", "vector": ["#);
    vectors.push_str(&vec!["-0.2"; 32].join(","));
    vectors.push_str(r#"]}, {"item_id": "6"}]}"#);
    write(&dir, "browser", "vectors", vectors.as_bytes())?;

    // tokenizer: 0 = tokenizer.json, 1 = text for the committed one, 2 = lines to train on.
    let mut bytes = vec![0u8];
    bytes.extend(file(&full, TOKENIZER));
    write(&dir, "tokenizer", "json", &bytes)?;
    write(&dir, "tokenizer", "text", "\u{41}w664 W47446 Ünïcode ﬁ 123-456\u{1}\t!".as_bytes())?;
    write(&dir, "tokenizer", "train", b"\x0ered shoe\nblue shoe\nred hat\n\n")?;
    Ok(())
}
