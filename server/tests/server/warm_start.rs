//! Warm start: the remapping of per-item tables onto a grown catalog, and a second retraining
//! on real data (the Diginetica slice) that starts from the first one's published model.

use std::collections::HashSet;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use burn::nn::Embedding;
use burn::tensor::Device;
use serde_json::{Value, json};
use sessionrank_core::reranker::read_f32;
use sessionrank_data::import::import_named;
use sessionrank_data::{Catalog, Dataset, EventKind, Item, Session};
use sessionrank_model::ModelConfig;
use sessionrank_server::app;
use sessionrank_train::pipeline::{FeatureOptions, build_encoder, complete_config};
use sessionrank_train::warm::{TableRows, remap_model};

use crate::common::*;

fn item(id: &str, text: &str, category: &str) -> Item {
    Item { id: id.into(), text: text.into(), category: Some(category.into()), price_level: Some(3) }
}

/// Row `r` of an embedding table.
fn row(table: &Option<Embedding>, r: usize) -> Vec<f32> {
    let w = table.as_ref().expect("the table exists").weight.val();
    let d = w.dims()[1];
    read_f32(w).expect("readback")[r * d..(r + 1) * d].to_vec()
}

#[test]
fn remapping_copies_known_rows_by_key_and_gives_new_items_fresh_rows() {
    let device = Device::flex();
    let mut old_catalog = Catalog::new();
    for i in 0..30 {
        old_catalog.upsert(item(
            &format!("i{i}"),
            &format!("item colour{} size{}", i % 5, i % 3),
            &format!("c{}", i % 4),
        ));
    }
    // The new catalog puts a new item first, so every known item moves one row down: rows must
    // be matched by id, not by position. It also brings a new category and new words.
    let mut new_catalog = Catalog::new();
    new_catalog.upsert(item("fresh", "brandnew gadget gadget", "cnew"));
    for it in old_catalog.items() {
        new_catalog.upsert(it.clone());
    }
    new_catalog.upsert(item("fresh2", "brandnew gadget", "cnew"));
    let dataset = |catalog: Catalog| Dataset {
        name: "t".into(),
        kind: sessionrank_data::DatasetKind::Sessions,
        catalog,
        train: Vec::new(),
        valid: Vec::new(),
        test: Vec::new(),
    };
    let (old_ds, new_ds) = (dataset(old_catalog), dataset(new_catalog));
    let base = ModelConfig::new()
        .with_d_model(16)
        .with_n_layers(1)
        .with_n_heads(2)
        .with_d_ff(64)
        .with_max_len(20);
    let opts = FeatureOptions { min_frequency: 1, ..FeatureOptions::default() };
    let old_enc = build_encoder(&old_ds, &opts, 20, base.max_candidates).expect("old encoder");
    let new_enc = build_encoder(&new_ds, &opts, 20, base.max_candidates).expect("new encoder");
    let old_config = complete_config(base.clone(), &old_enc);
    let new_config = complete_config(base, &new_enc);
    device.seed(1);
    let old = old_config.init(&device);
    device.seed(2);
    let (warm, report) =
        remap_model(&old, &old_config, &old_enc, &new_config, &new_enc, &new_ds.catalog, &device)
            .expect("remaps");

    assert_eq!(report.items, TableRows { carried: 30, new: 2 });
    assert_eq!(report.categories, TableRows { carried: 4, new: 1 });
    assert!(report.tokens.carried > 0 && report.tokens.new >= 2, "{report:?}");

    let (old_row, new_row) = (
        old_enc.item_row("i7").expect("i7 known") as usize,
        new_enc.item_row("i7").expect("i7 known") as usize,
    );
    assert_ne!(old_row, new_row, "the test needs the item to move");
    assert_eq!(
        row(&warm.items.ids, new_row),
        row(&old.items.ids, old_row),
        "a known item's row is copied exactly"
    );
    let fresh_row = row(&warm.items.ids, new_enc.item_row("fresh").expect("fresh known") as usize);
    let old_rows: Vec<Vec<f32>> = (0..=30).map(|r| row(&old.items.ids, r)).collect();
    assert!(!old_rows.contains(&fresh_row), "a new item gets a row of its own");
    let std = (fresh_row.iter().map(|x| x * x).sum::<f32>() / fresh_row.len() as f32).sqrt();
    assert!(
        std > 0.002 && std < 0.1,
        "a new row has the fresh initialisation's scale (0.02), got {std}"
    );
    assert_eq!(
        row(&warm.items.ids, 0),
        row(&old.items.ids, 0),
        "the 'unknown item' row is carried"
    );

    let c2 = |names: &[String]| names.iter().position(|c| c == "c2").expect("c2") + 1;
    assert_eq!(
        row(&warm.items.categories, c2(new_enc.category_names())),
        row(&old.items.categories, c2(old_enc.category_names()))
    );
    let (old_vocab, new_vocab) = (old_enc.tokenizer.vocab(), new_enc.tokenizer.vocab());
    let word = "colour3";
    assert_eq!(
        row(&warm.items.tokens, new_vocab[word] as usize),
        row(&old.items.tokens, old_vocab[word] as usize)
    );

    // Everything else is the old model's.
    let proj = |m: &sessionrank_model::SessionRankModel| {
        read_f32(m.items.content_proj.as_ref().expect("content").weight.val()).expect("readback")
    };
    assert_eq!(proj(&warm), proj(&old));
    // Another architecture is refused.
    let wider = complete_config(ModelConfig::new().with_d_model(32).with_n_heads(2), &new_enc);
    assert!(
        remap_model(&old, &old_config, &old_enc, &wider, &new_enc, &new_ds.catalog, &device)
            .is_err()
    );
}

fn kind_name(k: EventKind) -> &'static str {
    match k {
        EventKind::View => "view",
        EventKind::AddToCart => "add_to_cart",
        EventKind::Purchase => "purchase",
    }
}

/// PUT the catalog items among `ids` (catalog order) and POST the sessions' events.
async fn ingest(router: &Router, catalog: &Catalog, ids: &HashSet<u32>, sessions: &[Session]) {
    let items: Vec<Value> = catalog
        .items()
        .iter()
        .enumerate()
        .filter(|(i, _)| ids.contains(&(*i as u32)))
        .map(|(_, it)| json!({"id": it.id, "text": it.text, "category": it.category, "price_level": it.price_level}))
        .collect();
    for chunk in items.chunks(2000) {
        let r = send_json(router, "PUT", "/v1/items", &json!({"items": chunk})).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
    let mut events = Vec::new();
    for s in sessions {
        for (j, e) in s.events.iter().enumerate() {
            let item = catalog.get(e.item).expect("catalog item");
            let ts = e.timestamp.unwrap_or(1_460_000_000) + j as i64;
            events.push(json!({"session_id": s.id, "item_id": item.id, "type": kind_name(e.kind), "timestamp": ts}));
        }
    }
    for chunk in events.chunks(1000) {
        let r = send_json(router, "POST", "/v1/events", &json!({"events": chunk})).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
}

async fn retrain(router: &Router) -> Value {
    let r = admin(router, "POST", "/admin/retrain").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let id = r.json()["id"].as_str().expect("job id").to_string();
    let job = wait_for_job(router, &id, Duration::from_secs(300)).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    job
}

fn summary(job: &Value) -> String {
    let m = &job["metrics"];
    format!(
        "{} items, warm_start {}, {} epochs, train {:.1} s, held-out MRR@20 {:.2} P@20 {:.2}",
        m["items"],
        m["warm_start"],
        m["epochs"],
        m["train_seconds"].as_f64().unwrap_or(f64::NAN),
        m["holdout"]["new"]["mrr_at_20"].as_f64().unwrap_or(f64::NAN),
        m["holdout"]["new"]["p_at_20"].as_f64().unwrap_or(f64::NAN),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_retraining_warm_starts_from_the_first_on_a_grown_catalog() {
    let data = import_named("diginetica-slice", &sample_dir())
        .expect("the bundled Diginetica slice imports (tests/data)")
        .dataset;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.retrain.train = Some(small_training().with_max_epochs(3));
    config.retrain.warm_start_epochs = 1;
    let state = open(config).await;
    let router = app(state);

    // Day one: the first half of the sessions and only the items they use.
    let half = data.train.len() / 2;
    let first_items: HashSet<u32> =
        data.train[..half].iter().flat_map(|s| s.events.iter().map(|e| e.item)).collect();
    ingest(&router, &data.catalog, &first_items, &data.train[..half]).await;
    let first = retrain(&router).await;
    eprintln!("first job: {}", summary(&first));
    assert_eq!(first["published"], true, "{first}");
    assert_eq!(first["metrics"]["warm_start"]["used"], false, "{first}");
    assert_eq!(first["metrics"]["warm_start"]["reason"], "no live model");
    let v1 = first["model_version"].as_str().expect("version").to_string();

    // Day two: the rest of the sessions, and the catalog grows by the items they bring.
    let all_items: HashSet<u32> =
        data.train.iter().flat_map(|s| s.events.iter().map(|e| e.item)).collect();
    let added: HashSet<u32> = all_items.difference(&first_items).copied().collect();
    assert!(!added.is_empty(), "the second half brings new items");
    ingest(&router, &data.catalog, &added, &data.train[half..]).await;
    let second = retrain(&router).await;
    eprintln!("second job: {}", summary(&second));
    let warm = &second["metrics"]["warm_start"];
    assert_eq!(warm["used"], true, "{second}");
    assert_eq!(warm["from_version"], v1.as_str());
    assert_eq!(warm["rows"]["items"]["carried"].as_u64(), Some(first_items.len() as u64), "{warm}");
    assert_eq!(warm["rows"]["items"]["new"].as_u64(), Some(added.len() as u64), "{warm}");
    assert_eq!(warm["epochs"], 1);
    assert_eq!(second["metrics"]["epochs"], 1, "warm start trains warm_start_epochs");
    // The last progress report is kept: the finished epoch with its validation metrics.
    let training = &second["metrics"]["training"];
    assert_eq!(training["epoch"], 1, "{training}");
    assert!(training["last_epoch"]["valid"]["mrr_at_20"].as_f64().is_some(), "{training}");
    assert!(training["fraction"].as_f64().is_some_and(|f| f > 0.9), "{training}");
}

/// Measurement, not a check (`cargo test … -- --ignored warm_vs_cold --nocapture`): the
/// default model size on the slice; day two trained warm (from day one's model) and cold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: minutes on 2 cores"]
async fn warm_vs_cold_on_the_slice() {
    let data = import_named("diginetica-slice", &sample_dir())
        .expect("the bundled Diginetica slice imports (tests/data)")
        .dataset;
    let half = data.train.len() / 2;
    let first_items: HashSet<u32> =
        data.train[..half].iter().flat_map(|s| s.events.iter().map(|e| e.item)).collect();
    let all_items: HashSet<u32> =
        data.train.iter().flat_map(|s| s.events.iter().map(|e| e.item)).collect();
    let added: HashSet<u32> = all_items.difference(&first_items).copied().collect();
    for warm in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = test_config(dir.path());
        config.retrain = sessionrank_server::config::RetrainConfig {
            device: sessionrank_server::config::TrainDevice::Flex,
            warm_start: warm,
            ..Default::default()
        };
        let router = app(open(config).await);
        ingest(&router, &data.catalog, &first_items, &data.train[..half]).await;
        let first = retrain(&router).await;
        ingest(&router, &data.catalog, &added, &data.train[half..]).await;
        let second = retrain(&router).await;
        eprintln!(
            "warm_start = {warm}\n  day one: {}\n  day two: {}\n  day two reason: {}",
            summary(&first),
            summary(&second),
            second["reason"]
        );
    }
}
