//! The list-wise stage on the bundled Diginetica slice: the rank bias learns to trust the
//! retriever's order when the model's own scores carry nothing, and a bundle with list
//! context scores the same in the native engine, the evaluation scorer and its browser bundle.

mod common;

use burn::tensor::Device;
use common::{rng_turn, slice};
use sessionrank_core::FeatureEncoder;
use sessionrank_core::{Candidate, ModelBundle, Reranker, SessionEvent};
use sessionrank_data::Dataset;
use sessionrank_data::eval::Scorer;
use sessionrank_model::{ModelConfig, SessionRankModel};
use sessionrank_train::listwise::{
    ListAwareScorer, ListwiseConfig, evaluate_listwise, train_list_scorer,
};
use sessionrank_train::pipeline::{FeatureOptions, build_encoder, bundle_for, complete_config};

/// The slice, its encoder, a tiny config and an untrained model drawn with `seed`.
fn untrained(seed: u64) -> (Dataset, Device, FeatureEncoder, ModelConfig, SessionRankModel) {
    let ds = slice();
    let device = Device::flex();
    let encoder = build_encoder(&ds, &FeatureOptions::default(), 10, 128).expect("encoder");
    let tiny = ModelConfig::new()
        .with_d_model(16)
        .with_d_ff(32)
        .with_n_heads(2)
        .with_n_layers(1)
        .with_max_len(10)
        .with_dropout(0.0);
    let config = complete_config(tiny, &encoder);
    device.seed(seed);
    let model = config.init(&device);
    (ds, device, encoder, config, model)
}

#[test]
fn the_rank_bias_learns_to_trust_the_retriever_when_the_model_knows_nothing() {
    let _turn = rng_turn();
    // An untrained model: its scores are noise, the retriever's order is the only signal.
    let (ds, device, encoder, config, model) = untrained(3);
    let before = evaluate_listwise(
        &ListAwareScorer::new(model.clone(), &encoder, &config, &device),
        &ds,
        1000,
        42,
    );
    let lw = ListwiseConfig::new().with_epochs(40).with_lr(0.05).with_cases(5000);
    let (trained, out_config, report) =
        train_list_scorer(&model, &config, &encoder, &ds, &lw, &device).expect("list stage");
    assert!(!out_config.list_context);
    assert!(report.lists > 20, "lists with their target: {}", report.lists);
    assert!(
        report.epoch_loss.last() < report.epoch_loss.first(),
        "loss should fall: {:?}",
        report.epoch_loss
    );
    let after = evaluate_listwise(
        &ListAwareScorer::new(trained.clone(), &encoder, &out_config, &device),
        &ds,
        1000,
        42,
    );
    assert_eq!(before.cases, after.cases);
    assert!(
        after.ndcg_at_10 > before.ndcg_at_10 + 0.02 && after.ndcg_at_10 > 1.5 * before.ndcg_at_10,
        "retriever-100 NDCG@10 should rise once the retriever's order is learned: {:.4} -> {:.4}",
        before.ndcg_at_10,
        after.ndcg_at_10
    );
    // The learned bias favours the retriever's top over its tail.
    let bias = trained.scorer.rank_bias.weight.val().into_data().try_to_vec::<f32>().expect("bias");
    let head: f32 = bias[..5].iter().sum::<f32>() / 5.0;
    let tail: f32 = bias[80..100].iter().sum::<f32>() / 20.0;
    assert!(head > tail, "rank bias head {head} should exceed tail {tail}");
}

#[test]
fn a_list_context_bundle_scores_the_same_in_the_engine_the_evaluation_and_the_browser() {
    let _turn = rng_turn();
    let (ds, device, encoder, config, model) = untrained(4);
    let lw = ListwiseConfig::new().with_list_context(true).with_epochs(2).with_cases(500);
    let (trained, out_config, _) =
        train_list_scorer(&model, &config, &encoder, &ds, &lw, &device).expect("list stage");
    assert!(out_config.list_context && trained.scorer.list.is_some());

    let tmp = tempfile::tempdir().expect("tmp");
    bundle_for(&ds, &out_config, &trained, &encoder, serde_json::json!({}), false)
        .expect("bundle")
        .write_dir(tmp.path())
        .expect("write");
    let bundle = ModelBundle::read_dir(tmp.path()).expect("read back");
    assert!(bundle.manifest.config.list_context);
    let engine = Reranker::from_bundle(&bundle, &device).expect("engine");

    // One real test session and 30 catalog items as the storefront's list.
    let case = ds.test.iter().find(|c| c.prefix.len() >= 2).expect("a test case");
    let items = ds.catalog.items();
    let list: Vec<u32> = (0..30u32).collect();
    let session: Vec<SessionEvent> = case
        .prefix
        .iter()
        .map(|e| SessionEvent {
            item_id: items[e.item as usize].id.clone(),
            kind: e.kind,
            timestamp: e.timestamp,
            content: None,
            vector: None,
        })
        .collect();
    let candidates: Vec<Candidate> = list
        .iter()
        .map(|&i| Candidate {
            item_id: items[i as usize].id.clone(),
            content: None,
            vector: None,
            available: true,
        })
        .collect();
    let ranking = engine.rerank(&session, &candidates).expect("rerank");

    let scorer = ListAwareScorer::new(trained, &encoder, &out_config, &device);
    let scores = scorer.score_candidates(&case.prefix, &list);
    for item in &ranking.items {
        let expected = scores[item.upstream_rank];
        assert!(
            (item.score - expected).abs() < 1e-4,
            "{}: engine {} vs evaluation {}",
            item.item_id,
            item.score,
            expected
        );
    }

    // The browser bundle keeps the list layer (it is not catalog-sized) and, given the full
    // model's item vectors, ranks the same.
    let browser = bundle.browser().expect("browser bundle");
    assert!(browser.manifest.config.list_context);
    let small = Reranker::from_bundle(&browser, &device).expect("browser engine");
    let ids: Vec<(&str, Option<&sessionrank_core::ItemContent>)> = session
        .iter()
        .map(|e| e.item_id.as_str())
        .chain(candidates.iter().map(|c| c.item_id.as_str()))
        .map(|id| (id, None))
        .collect();
    let vectors = engine.item_vectors(&ids).expect("vectors");
    let (ev, cv) = vectors.split_at(session.len());
    let session_v: Vec<SessionEvent> = session
        .iter()
        .zip(ev)
        .map(|(e, v)| SessionEvent { vector: Some(v.clone()), ..e.clone() })
        .collect();
    let candidates_v: Vec<Candidate> = candidates
        .iter()
        .zip(cv)
        .map(|(c, v)| Candidate { vector: Some(v.clone()), ..c.clone() })
        .collect();
    let in_browser = small.rerank(&session_v, &candidates_v).expect("browser rerank");
    for (a, b) in ranking.items.iter().zip(&in_browser.items) {
        assert_eq!(a.item_id, b.item_id);
        assert!((a.score - b.score).abs() < 1e-4);
    }
}
