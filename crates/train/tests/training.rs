//! The trainer on real sessions (the bundled Diginetica metadata slice, `tests/data`: text,
//! category, price): learning, checkpoint resume, and bundle round trips that must not change a
//! single score.

mod common;

use burn::tensor::Device;
use common::{rng_turn, slice};
use sessionrank_core::{Candidate, ModelBundle, Reranker, SessionEvent};
use sessionrank_data::eval::Scorer;
use sessionrank_model::ModelConfig;
use sessionrank_train::pipeline::{FeatureOptions, build_encoder, bundle_for, complete_config};
use sessionrank_train::trainer::{catalog_features, learning_rate};
use sessionrank_train::{ModelScorer, TrainConfig, train};

fn small(model: ModelConfig) -> ModelConfig {
    model
        .with_d_model(16)
        .with_d_ff(32)
        .with_n_heads(2)
        .with_n_layers(1)
        .with_max_len(10)
        .with_dropout(0.0)
}

#[test]
fn bundle_round_trip_keeps_every_score() {
    let _turn = rng_turn();
    let ds = slice();
    let encoder = build_encoder(&ds, &FeatureOptions::default(), 10, 128).expect("encoder");
    let config = TrainConfig::new(complete_config(small(ModelConfig::new()), &encoder))
        .with_max_epochs(1)
        .with_valid_cases(200);
    let device = Device::flex();
    let outcome = train(&ds, &encoder, &config, &device, None).expect("train");
    let bundle =
        bundle_for(&ds, &config.model, &outcome.model, &encoder, serde_json::json!({}), true)
            .expect("bundle");
    let dir = tempfile::tempdir().expect("tmp");
    bundle.write_dir(&dir.path().join("v1")).expect("write");
    let reread = ModelBundle::read_dir(&dir.path().join("v1")).expect("read");
    assert_eq!(reread.manifest.files, bundle.manifest.files);
    assert!(reread.files.contains_key("model.safetensors"));

    let direct = ModelScorer::new(
        outcome.model.clone(),
        catalog_features(&encoder, &device),
        &device,
        "direct",
    );
    let a = Reranker::from_bundle(&bundle, &device).expect("engine");
    let b = Reranker::from_bundle(&reread, &device).expect("engine");
    let items = ds.catalog.items();
    for case in ds.test.iter().take(20) {
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
        let cands_idx: Vec<u32> =
            (0..100u32).map(|i| (case.target + i * 37) % items.len() as u32).collect();
        let mut seen = std::collections::HashSet::new();
        let cands_idx: Vec<u32> = cands_idx.into_iter().filter(|c| seen.insert(*c)).collect();
        let cands: Vec<Candidate> = cands_idx
            .iter()
            .map(|&i| Candidate {
                item_id: items[i as usize].id.clone(),
                content: None,
                vector: None,
                available: true,
            })
            .collect();
        let ra = a.rerank(&session, &cands).expect("rerank");
        let rb = b.rerank(&session, &cands).expect("rerank");
        assert_eq!(ra, rb, "a saved and re-read bundle scores bit-identically");
        let full = direct.score_candidates(&case.prefix, &cands_idx);
        for item in &ra.items {
            let want = full[item.upstream_rank];
            assert!((item.score - want).abs() <= 1e-4, "engine {} vs trainer {want}", item.score);
        }
    }
}

#[test]
fn tiny_overfit_on_real_sessions() {
    let _turn = rng_turn();
    let mut ds = slice();
    ds.train.truncate(40);
    ds.valid = ds
        .train
        .iter()
        .filter(|s| s.events.len() >= 2)
        .map(|s| sessionrank_data::TestCase {
            prefix: s.events[..s.events.len() - 1].to_vec(),
            target: s.events[s.events.len() - 1].item,
        })
        .collect();
    let encoder = build_encoder(&ds, &FeatureOptions::default(), 10, 128).expect("encoder");
    let config = TrainConfig::new(complete_config(
        small(ModelConfig::new()).with_d_model(32).with_d_ff(64),
        &encoder,
    ))
    .with_max_epochs(150)
    .with_patience(150)
    .with_batch_size(8)
    .with_lr(3e-3)
    .with_weight_decay(0.0);
    let outcome = train(&ds, &encoder, &config, &Device::flex(), None).expect("train");
    let last = outcome.history.last().expect("history");
    assert!(
        last.valid.hr_at_10 >= 0.9,
        "memorised {:.2} of its own training sessions",
        last.valid.hr_at_10
    );
    assert!(last.train_loss < outcome.history[0].train_loss / 3.0);
}

/// A step cut into parts whose backward passes run on two threads is the whole batch's step
/// (gradients summed by target share): without dropout the two runs' models score alike, and
/// a threaded run is as reproducible as a plain one.
#[test]
fn a_step_split_over_threads_is_the_whole_batch_step() {
    let _turn = rng_turn();
    let mut ds = slice();
    ds.train.truncate(300);
    let encoder = build_encoder(&ds, &FeatureOptions::default(), 10, 128).expect("encoder");
    let base = TrainConfig::new(complete_config(small(ModelConfig::new()), &encoder))
        .with_valid_cases(200)
        .with_max_epochs(2)
        .with_batch_size(32);
    let run = |threads: usize| {
        let outcome =
            train(&ds, &encoder, &base.clone().with_threads(threads), &Device::flex(), None)
                .expect("train");
        let device = Device::flex();
        let scorer = ModelScorer::new(
            outcome.model,
            catalog_features(&encoder, &device),
            &device,
            format!("{threads} threads"),
        );
        let prefixes: Vec<&[sessionrank_data::Event]> =
            ds.valid.iter().take(20).map(|c| c.prefix.as_slice()).collect();
        let mut scores = vec![0.0f32; prefixes.len() * scorer.n_items()];
        scorer.score_batch(&prefixes, &mut scores);
        scores
    };
    let (one, two) = (run(1), run(2));
    let worst = one.iter().zip(&two).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-3, "1 vs 2 threads: scores differ by up to {worst}");
    assert_eq!(two, run(2), "same seed, same threads: the same numbers");
}

#[test]
fn an_interrupted_run_resumes_from_its_checkpoint() {
    let _turn = rng_turn();
    let mut ds = slice();
    ds.train.truncate(300);
    let encoder = build_encoder(&ds, &FeatureOptions::default(), 10, 128).expect("encoder");
    let base = TrainConfig::new(complete_config(small(ModelConfig::new()), &encoder))
        .with_valid_cases(100)
        .with_patience(10);
    let dir = tempfile::tempdir().expect("tmp");
    // "Killed" after two epochs: the budget stops it, the checkpoint stays.
    let first = train(
        &ds,
        &encoder,
        &base.clone().with_max_epochs(4).with_time_budget_s(Some(0)),
        &Device::flex(),
        Some(dir.path()),
    )
    .expect("train");
    assert_eq!(first.history.len(), 1);
    // Resumed for more epochs with more patience: still the same experiment.
    let resumed = train(
        &ds,
        &encoder,
        &base.clone().with_max_epochs(4).with_patience(12),
        &Device::flex(),
        Some(dir.path()),
    )
    .expect("resume");
    assert_eq!(resumed.history.len(), 4, "continues at epoch 2, not from scratch");
    assert_eq!(resumed.history[0].valid, first.history[0].valid);
    // A checkpoint of another experiment is refused, not silently mixed in.
    let other = base.clone().with_max_epochs(4).with_lr(0.5);
    assert!(train(&ds, &encoder, &other, &Device::flex(), Some(dir.path())).is_err());
    let other_schedule = base.with_max_epochs(4).with_schedule_epochs(Some(40));
    assert!(
        train(&ds, &encoder, &other_schedule, &Device::flex(), Some(dir.path())).is_err(),
        "another learning-rate schedule is another run"
    );
}

#[test]
fn learning_rate_warms_up_then_decays() {
    let c = TrainConfig::new(ModelConfig::new()).with_lr(1e-3).with_warmup_steps(10);
    assert!(learning_rate(&c, 0, 1000) < learning_rate(&c, 9, 1000));
    assert!((learning_rate(&c, 9, 1000) - 1e-3).abs() < 1e-4);
    assert!(learning_rate(&c, 999, 1000) < 1e-4);
    assert!(learning_rate(&c, 999, 1000) > 0.0);
}

#[test]
fn a_longer_schedule_stops_with_the_rate_still_high() {
    let _turn = rng_turn();
    let mut ds = slice();
    ds.train.truncate(300);
    let encoder = build_encoder(&ds, &FeatureOptions::default(), 10, 128).expect("encoder");
    let base = TrainConfig::new(complete_config(small(ModelConfig::new()), &encoder))
        .with_valid_cases(100)
        .with_patience(10)
        .with_max_epochs(2);
    let own = train(&ds, &encoder, &base.clone(), &Device::flex(), None).expect("train");
    let long = train(&ds, &encoder, &base.with_schedule_epochs(Some(8)), &Device::flex(), None)
        .expect("train");
    assert_eq!((own.history.len(), long.history.len()), (2, 2), "both stop after --epochs");
    let last_lr = |o: &sessionrank_train::TrainOutcome| o.history.last().expect("history").lr;
    // Its own schedule ends near 5% of the peak; a fourth of an 8-epoch one is still near it.
    assert!(last_lr(&own) < 0.2e-3, "own schedule ends low: {}", last_lr(&own));
    assert!(
        last_lr(&long) > 0.7e-3,
        "2 epochs of an 8-epoch schedule end high: {}",
        last_lr(&long)
    );
}
