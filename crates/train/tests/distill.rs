//! Distillation on the bundled Diginetica slice: the KD term is zero exactly when student and
//! teacher agree, a distilled student moves towards its teacher, and a teacher over another
//! item index is refused; a hybrid teacher (with session-kNN) mixes left-out kNN votes in.

mod common;

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;
use common::{rng_turn, slice};
use sessionrank_core::ModelBundle;
use sessionrank_core::features::{EncodedEvent, FeatureEncoder};
use sessionrank_data::baselines::SessionKnn;
use sessionrank_data::blend::{KnnBlend, mix_row};
use sessionrank_data::eval::evaluate_full;
use sessionrank_data::{Catalog, Dataset, Event};
use sessionrank_model::{ModelConfig, SessionRankModel};
use sessionrank_train::batch::{
    TrainBatch, make_batch, training_sequences, training_session_indices,
};
use sessionrank_train::distill::{KnnQuery, batch_kd_loss};
use sessionrank_train::pipeline::{FeatureOptions, build_encoder, bundle_for, complete_config};
use sessionrank_train::trainer::catalog_features;
use sessionrank_train::{DistillConfig, Teacher, TrainConfig, TrainError, train};

fn tiny(d_model: usize, seed_layers: usize) -> ModelConfig {
    ModelConfig::new()
        .with_d_model(d_model)
        .with_d_ff(2 * d_model)
        .with_n_heads(2)
        .with_n_layers(seed_layers)
        .with_max_len(10)
        .with_dropout(0.0)
}

/// The same 64 training sessions every time, over the full catalog.
fn fixed_batch(ds: &Dataset, max_len: usize, device: &Device) -> TrainBatch {
    let seqs = training_sequences(&ds.train, max_len);
    let ids: Vec<usize> = (0..64.min(seqs.len())).collect();
    make_batch(&seqs, &ids, max_len, device)
}

/// The slice, the CPU device, the slice's encoder, a tiny model over it and a scratch dir.
fn tiny_setup() -> (Dataset, Device, FeatureEncoder, ModelConfig, tempfile::TempDir) {
    let ds = slice();
    let device = Device::flex();
    let encoder = build_encoder(&ds, &FeatureOptions::default(), 10, 128).expect("encoder");
    let config = complete_config(tiny(16, 1), &encoder);
    (ds, device, encoder, config, tempfile::tempdir().expect("tmp"))
}

fn kd(
    student: &SessionRankModel,
    encoder: &FeatureEncoder,
    teacher: &Teacher,
    batch: &TrainBatch,
    device: &Device,
) -> f32 {
    batch_kd_loss(student, catalog_features(encoder, device), teacher, batch, 2.0)
        .into_scalar::<f32>()
}

fn write_bundle(
    ds: &Dataset,
    config: &ModelConfig,
    model: &SessionRankModel,
    encoder: &FeatureEncoder,
    dir: &Path,
) -> ModelBundle {
    let bundle =
        bundle_for(ds, config, model, encoder, serde_json::json!({}), false).expect("bundle");
    bundle.write_dir(dir).expect("write bundle");
    bundle
}

#[test]
fn kd_loss_is_zero_for_the_teacher_itself_and_positive_for_another_model() {
    let _turn = rng_turn();
    let ds = slice();
    let device = Device::flex();
    let encoder = build_encoder(&ds, &FeatureOptions::default(), 10, 128).expect("encoder");
    let config = complete_config(tiny(16, 1), &encoder);
    device.seed(1);
    let teacher_model = config.init(&device);
    let bundle = bundle_for(&ds, &config, &teacher_model, &encoder, serde_json::json!({}), false)
        .expect("bundle");
    let teacher =
        Teacher::from_bundle(&bundle, &ds.catalog, &device).expect("teacher over the same catalog");
    let batch = fixed_batch(&ds, config.max_len, &device);

    let same = kd(&teacher_model, &encoder, &teacher, &batch, &device);
    assert!(same.abs() < 1e-5, "student == teacher: KD {same}");

    device.seed(2);
    let other = config.init(&device);
    let differs = kd(&other, &encoder, &teacher, &batch, &device);
    assert!(differs.is_finite() && differs > 1e-3, "another model: KD {differs}");
}

#[test]
fn a_distilled_student_moves_towards_its_teacher() {
    let _turn = rng_turn();
    let ds = slice();
    let device = Device::flex();
    let tmp = tempfile::tempdir().expect("tmp");
    let encoder = build_encoder(&ds, &FeatureOptions::default(), 10, 128).expect("encoder");

    let teacher_config = TrainConfig::new(complete_config(tiny(32, 1), &encoder))
        .with_max_epochs(1)
        .with_valid_cases(200)
        .with_time_budget_s(Some(30));
    let trained = train(&ds, &encoder, &teacher_config, &device, None).expect("train the teacher");
    let teacher_dir = tmp.path().join("teacher");
    write_bundle(&ds, &teacher_config.model, &trained.model, &encoder, &teacher_dir);

    // Smaller student, sampled softmax: the KD term runs over the step's sampled table.
    let student_model = complete_config(tiny(16, 1), &encoder);
    let student_config = TrainConfig::new(student_model.clone())
        .with_max_epochs(2)
        .with_valid_cases(200)
        .with_negatives(500)
        .with_seed(7)
        .with_time_budget_s(Some(40))
        .with_distill(Some(DistillConfig::new(vec![teacher_dir.clone()]).with_alpha(0.7)));
    let outcome = train(&ds, &encoder, &student_config, &device, None).expect("train the student");
    for log in &outcome.history {
        let kd = log.train_kd_loss.expect("the KD term is logged");
        assert!(
            log.train_loss.is_finite() && kd.is_finite() && kd >= 0.0,
            "epoch {}: loss {} kd {kd}",
            log.epoch,
            log.train_loss
        );
    }

    // KL to the teacher over the full catalog on fixed sessions: the student before training
    // (same seed, same init) against the distilled student.
    let teacher = Teacher::load(&teacher_dir, &ds.catalog, &device).expect("load the teacher");
    let batch = fixed_batch(&ds, student_model.max_len, &device);
    let ad = device.clone().autodiff();
    ad.seed(student_config.seed);
    let before = student_model.init(&ad).valid();
    let kd_before = kd(&before, &encoder, &teacher, &batch, &device);
    let kd_after = kd(&outcome.model, &encoder, &teacher, &batch, &device);
    let per_epoch: Vec<(f64, Option<f64>)> =
        outcome.history.iter().map(|l| (l.train_loss, l.train_kd_loss)).collect();
    eprintln!(
        "KL to the teacher: before {kd_before}, after {kd_after}; (loss, kd) per epoch {per_epoch:?}"
    );
    if let [first, .., last] = per_epoch.as_slice() {
        assert!(last.1 < first.1, "the logged KD term falls from epoch to epoch: {per_epoch:?}");
    }
    assert!(
        kd_after.is_finite() && kd_after < kd_before,
        "KL to the teacher: before {kd_before}, after {kd_after}"
    );
}

#[test]
fn a_teacher_over_another_item_index_is_refused() {
    let ds = slice();
    let device = Device::flex();
    // The same shop after a re-import that renamed a few items: the teacher cannot score them.
    let mut other = ds.clone();
    let mut catalog = Catalog::new();
    for (i, item) in ds.catalog.items().iter().enumerate() {
        let mut item = item.clone();
        if i < 5 {
            item.id = format!("renamed-{}", item.id);
        }
        catalog.upsert(item);
    }
    other.catalog = catalog;
    let encoder = build_encoder(&other, &FeatureOptions::default(), 10, 128).expect("encoder");
    let config = complete_config(tiny(16, 1), &encoder);
    let model = config.init(&device);
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("teacher");
    write_bundle(&other, &config, &model, &encoder, &dir);

    let err =
        Teacher::load(&dir, &ds.catalog, &device).expect_err("another item index must be refused");
    let msg = err.to_string();
    assert!(matches!(err, TrainError::Teacher { .. }), "{msg}");
    assert!(
        msg.contains("another item index") && msg.contains("5 of the student's"),
        "the error says why: {msg}"
    );

    // Through the trainer too, before any step is taken.
    let student_encoder = build_encoder(&ds, &FeatureOptions::default(), 10, 128).expect("encoder");
    let student = TrainConfig::new(complete_config(tiny(16, 1), &student_encoder))
        .with_max_epochs(1)
        .with_distill(Some(DistillConfig::new(vec![dir.clone()])));
    let err =
        train(&ds, &student_encoder, &student, &device, None).expect_err("refused by the trainer");
    assert!(matches!(err, TrainError::Teacher { .. }), "{err}");

    // A teacher that knows every item in another order is accepted (rows mapped by id).
    let mut reordered = ds.clone();
    let mut catalog = Catalog::new();
    for item in ds.catalog.items().iter().rev() {
        catalog.upsert(item.clone());
    }
    reordered.catalog = catalog;
    let encoder = build_encoder(&reordered, &FeatureOptions::default(), 10, 128).expect("encoder");
    let config = complete_config(tiny(16, 1), &encoder);
    let dir = tmp.path().join("reordered");
    write_bundle(&reordered, &config, &config.init(&device), &encoder, &dir);
    Teacher::load(&dir, &ds.catalog, &device).expect("a reordered index is mapped by item id");
}

#[test]
fn an_ensemble_teacher_averages_its_members_and_scores_like_them() {
    let _turn = rng_turn();
    let (ds, device, encoder, config, tmp) = tiny_setup();
    device.seed(3);
    let model = config.init(&device);
    let other = config.init(&device);
    let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
    write_bundle(&ds, &config, &model, &encoder, &a);
    write_bundle(&ds, &config, &model, &encoder, &b);
    write_bundle(&ds, &config, &other, &encoder, &c);
    let batch = fixed_batch(&ds, config.max_len, &device);

    // The same model twice teaches exactly what it teaches alone: KD zero for itself.
    let twice = Teacher::load_all(&[a.clone(), b], &ds.catalog, &device).expect("ensemble");
    assert_eq!(twice.len(), 2);
    let same = kd(&model, &encoder, &twice, &batch, &device);
    assert!(same.abs() < 1e-5, "student == both members: KD {same}");
    // Another member moves the target away from either model alone.
    let mixed = Teacher::load_all(&[a.clone(), c], &ds.catalog, &device).expect("ensemble");
    let to_model = kd(&model, &encoder, &mixed, &batch, &device);
    let to_other = kd(&other, &encoder, &mixed, &batch, &device);
    assert!(to_model > 1e-4 && to_other > 1e-4, "KD to the mixed ensemble: {to_model} {to_other}");

    // Through the evaluation protocol, the ensemble of one model twice ranks as the model.
    let single = Teacher::load(&a, &ds.catalog, &device).expect("single");
    let n = encoder.n_items();
    let cases = &ds.test[..ds.test.len().min(300)];
    let m1 = evaluate_full(&single, cases, n, 64, false);
    let m2 = evaluate_full(&twice, cases, n, 64, false);
    assert_eq!((m1.p_at_20, m1.mrr_at_20), (m2.p_at_20, m2.mrr_at_20));
    assert!(m1.cases > 0);

    // A member that reads a shorter context than the student is refused, naming the reason.
    let longer = config.clone().with_max_len(config.max_len + 5);
    let err = DistillConfig::new(vec![a])
        .load_teacher(&ds.catalog, &ds.train, &longer, &device)
        .expect_err("a shorter teacher context is refused");
    assert!(err.to_string().contains("max_len"), "{err}");
    let err = DistillConfig::new(Vec::new()).validate().expect_err("no teacher");
    assert!(err.to_string().contains("at least one teacher"), "{err}");
}

/// A hybrid teacher (models + session-kNN, `--kd-knn-weight`) teaches the mixture of the
/// model's distribution with kNN votes in which each training prefix's own session is left
/// out — without that, the votes would name the very next item the student must predict.
#[test]
fn a_hybrid_teacher_mixes_knn_votes_left_out_of_their_own_session() {
    let _turn = rng_turn();
    let (ds, device, encoder, config, tmp) = tiny_setup();
    device.seed(5);
    let model = config.init(&device);
    let dir = tmp.path().join("t");
    write_bundle(&ds, &config, &model, &encoder, &dir);
    let n = encoder.n_items();
    let knn = SessionKnn::fit(&ds.train, n);

    let seqs = training_sequences(&ds.train, config.max_len);
    let ids: Vec<usize> = (0..64.min(seqs.len())).collect();
    let batch = make_batch(&seqs, &ids, config.max_len, &device);
    let session_of = training_session_indices(&ds.train);
    let query = KnnQuery::of_batch(&seqs, &session_of, &ids, config.max_len);
    assert_eq!(query.prefixes.len(), batch.n_targets, "one prefix per target");

    let plain = Teacher::load(&dir, &ds.catalog, &device).expect("teacher");
    let hybrid =
        Teacher::load(&dir, &ds.catalog, &device).expect("teacher").with_knn(knn.clone(), 0.5);
    assert!(hybrid.uses_knn() && !plain.uses_knn());
    let read = |t: burn::tensor::Tensor<2>| {
        t.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32")
    };
    let logits = read(plain.logits(&batch));
    let mixed = read(hybrid.hybrid_logits(&batch, &query));
    let rows = n + 1; // row 0: padding
    assert_eq!(mixed.len(), batch.n_targets * rows);
    let prefixes: Vec<&[Event]> = query.prefixes.iter().map(Vec::as_slice).collect();
    let mut left_out = vec![0f32; prefixes.len() * n];
    knn.score_leaving_out(&prefixes, &query.sessions, &mut left_out);
    let mut kept = vec![0f32; prefixes.len() * n];
    knn.score_leaving_out(&prefixes, &vec![None; prefixes.len()], &mut kept);
    // The teacher's rows are the mixture of the model's softmax with the left-out votes.
    for k in 0..batch.n_targets {
        let mut want = logits[k * rows..(k + 1) * rows].to_vec();
        let mut votes = vec![0f32];
        votes.extend_from_slice(&left_out[k * n..(k + 1) * n]);
        mix_row(&mut want, &votes, 0.5);
        for (got, want) in mixed[k * rows..(k + 1) * rows].iter().zip(&want) {
            assert!((got.exp() - want.exp()).abs() < 1e-5, "row {k}: {got} vs {want}");
        }
    }
    // Leaving the session out takes away the leak: with it kept, kNN's share of the true next
    // item is far larger.
    let targets = read_targets(&seqs, &ids, config.max_len);
    let share = |votes: &[f32]| -> f64 {
        let mut s = 0.0;
        for (k, &t) in targets.iter().enumerate() {
            let row = &votes[k * n..(k + 1) * n];
            let total: f32 = row.iter().sum();
            s += f64::from(row[t] / total.max(1e-12));
        }
        s / targets.len() as f64
    };
    let (fair, leaked) = (share(&left_out), share(&kept));
    assert!(leaked > fair * 1.5, "kNN share of the next item: left out {fair}, kept {leaked}");

    // As a scorer (validation, `sessionrank eval`), the hybrid ranks as the blend of the two.
    let cases = &ds.test[..ds.test.len().min(200)];
    let as_blend = KnnBlend { model: &plain, knn: &knn, weight: 0.5 };
    let (a, b) = (
        evaluate_full(&hybrid, cases, n, 64, false),
        evaluate_full(&as_blend, cases, n, 64, false),
    );
    assert_eq!((a.p_at_20, a.mrr_at_20), (b.p_at_20, b.mrr_at_20));

    // A student distilled from a hybrid over a sampled table trains with a finite KD term.
    let student = TrainConfig::new(config.clone())
        .with_max_epochs(1)
        .with_valid_cases(100)
        .with_negatives(300)
        .with_distill(Some(DistillConfig::new(vec![dir]).with_knn_weight(Some(0.5))));
    let outcome =
        train(&ds, &encoder, &student, &device, None).expect("train with a hybrid teacher");
    let kd = outcome.history.first().and_then(|l| l.train_kd_loss).unwrap_or(f64::NAN);
    assert!(kd.is_finite() && kd > 0.0, "KD term {kd}");
}

/// The catalog index of the next item at every target position of `make_batch(seqs, ids)`.
fn read_targets(seqs: &[Vec<EncodedEvent>], ids: &[usize], max_len: usize) -> Vec<usize> {
    let mut t = Vec::new();
    for &i in ids {
        let s = &seqs[i];
        let n_in = (s.len() - 1).min(max_len);
        let start = s.len() - 1 - n_in;
        t.extend((0..n_in).map(|p| s[start + p + 1].row as usize - 1));
    }
    t
}
