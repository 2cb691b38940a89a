//! Shape, mask and learning tests of the model on the CPU backend.

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::*;

fn config() -> ModelConfig {
    ModelConfig::new()
        .with_n_items(20)
        .with_vocab_size(30)
        .with_n_categories(5)
        .with_d_model(16)
        .with_d_ff(32)
        .with_n_heads(2)
        .with_n_layers(2)
        .with_max_len(8)
        .with_max_tokens(4)
        .with_dropout(0.0)
}

fn features(n: usize, device: &Device) -> ItemFeatures {
    // Row 0 padding, rows 1..=n items with a few tokens, a category and a price.
    let rows = n + 1;
    let ids: Vec<i64> = (0..rows as i64).collect();
    let tokens: Vec<i64> =
        (0..rows * 4).map(|i| if i % 4 < 2 && i >= 4 { (i % 29 + 1) as i64 } else { 0 }).collect();
    let cats: Vec<i64> = (0..rows).map(|i| if i == 0 { 0 } else { (i % 5 + 1) as i64 }).collect();
    let prices: Vec<i64> = (0..rows).map(|i| (i % 17) as i64).collect();
    ItemFeatures {
        ids: Tensor::<1, Int>::from_data(TensorData::new(ids, [rows]), device),
        tokens: Tensor::<2, Int>::from_data(TensorData::new(tokens, [rows, 4]), device),
        categories: Tensor::<1, Int>::from_data(TensorData::new(cats, [rows]), device),
        prices: Tensor::<1, Int>::from_data(TensorData::new(prices, [rows]), device),
    }
}

fn sessions(rows: &[&[i64]], device: &Device) -> SessionInput {
    let b = rows.len();
    let l = rows.iter().map(|r| r.len()).max().unwrap_or(1);
    let mut items = vec![0i64; b * l];
    let mut kinds = vec![0i64; b * l];
    let mut last = vec![0i64; b];
    for (i, r) in rows.iter().enumerate() {
        for (j, &x) in r.iter().enumerate() {
            items[i * l + j] = x;
            kinds[i * l + j] = 1;
        }
        last[i] = r.len() as i64 - 1;
    }
    SessionInput {
        items: Tensor::<2, Int>::from_data(TensorData::new(items, [b, l]), device),
        kinds: Tensor::<2, Int>::from_data(TensorData::new(kinds, [b, l]), device),
        gaps: Tensor::<2, Int>::zeros([b, l], device),
        last: Tensor::<1, Int>::from_data(TensorData::new(last, [b]), device),
    }
}

#[test]
fn shapes_of_every_forward() {
    let device = Device::flex();
    let model = config().init(&device);
    let table = model.item_vectors(features(20, &device));
    assert_eq!(table.dims(), [21, 16]);
    let input = sessions(&[&[1, 2, 3], &[4, 5]], &device);
    assert_eq!(model.session.forward(table.clone(), &input).dims(), [2, 3, 16]);
    assert_eq!(model.forward_all_positions(table.clone(), &input).dims(), [2, 3, 21]);
    assert_eq!(model.forward_full(table.clone(), &input).dims(), [2, 21]);
    let cands = CandidateInput {
        items: Tensor::<2, Int>::from_data(
            TensorData::new(vec![6i64, 7, 8, 9, 10, 11], [2, 3]),
            &device,
        ),
        ranks: Tensor::<2, Int>::from_data(
            TensorData::new(vec![0i64, 1, 2, 0, 1, 2], [2, 3]),
            &device,
        ),
    };
    assert_eq!(model.forward_rerank(table, &input, &cands).dims(), [2, 3]);
}

#[test]
fn causal_mask_hides_the_future_and_padding() {
    // The state after event t must not change when later events (or padding) change.
    let device = Device::flex();
    let model = config().init(&device).valid();
    let table = model.item_vectors(features(20, &device));
    let a = model.session.forward(table.clone(), &sessions(&[&[1, 2, 3, 4]], &device));
    let b = model.session.forward(table.clone(), &sessions(&[&[1, 2, 9, 10]], &device));
    let first_a = a.clone().slice([0..1, 0..2, 0..16]).into_data();
    let first_b = b.slice([0..1, 0..2, 0..16]).into_data();
    first_a.assert_approx_eq::<f32>(&first_b, burn::tensor::Tolerance::absolute(1e-6));
    // A short session padded in a batch gives the same last state as alone.
    let alone = model.session.forward_last(table.clone(), &sessions(&[&[5, 6]], &device));
    let padded = model
        .session
        .forward_last(table, &sessions(&[&[5, 6], &[1, 2, 3, 4]], &device))
        .slice([0..1, 0..16]);
    alone
        .into_data()
        .assert_approx_eq::<f32>(&padded.into_data(), burn::tensor::Tolerance::absolute(1e-5));
}

#[test]
fn unknown_items_get_content_vectors() {
    // Two unknown items (id 0) with different content get different vectors.
    let device = Device::flex();
    let model = config().init(&device);
    let mut f = features(3, &device);
    f.ids = Tensor::<1, Int>::zeros([4], &device);
    let v = model.item_vectors(f).into_data().try_to_vec::<f32>().unwrap_or_default();
    let (r1, r2) = (&v[16..32], &v[32..48]);
    assert!(r1.iter().zip(r2).any(|(a, b)| (a - b).abs() > 1e-4));
}

#[test]
fn tiny_overfit_learns_a_fixed_successor() {
    // Each item i is always followed by item i+1: a few hundred steps must learn it.
    let device = Device::flex().autodiff();
    device.seed(7);
    let cfg = config();
    let mut model = cfg.init(&device);
    let mut optim = AdamWConfig::new().init();
    let data: Vec<Vec<i64>> = (1..=12).map(|s| (s..s + 5).collect()).collect();
    let rows: Vec<&[i64]> = data.iter().map(|r| &r[..4]).collect();
    let input = sessions(&rows, &device);
    let targets: Vec<i64> = data.iter().flat_map(|r| r[1..5].to_vec()).collect();
    let n = targets.len();
    let targets = Tensor::<1, Int>::from_data(TensorData::new(targets, [n]), &device);
    let mut last = f32::MAX;
    for _ in 0..150 {
        let table = model.item_vectors(features(20, &device));
        let logits = model.forward_all_positions(table, &input).reshape([n, 21]);
        let logp = burn::tensor::activation::log_softmax(logits, 1);
        let loss = logp.gather(1, targets.clone().reshape([n, 1])).mean().neg();
        last = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(3e-3, model, grads);
    }
    assert!(last < 0.3, "loss after training: {last}");
}

#[test]
fn time_gap_buckets_are_monotonic_and_capped() {
    assert_eq!(time_gap_bucket(None), 0);
    assert_eq!(time_gap_bucket(Some(0)), 1);
    assert_eq!(time_gap_bucket(Some(1)), 2);
    assert_eq!(time_gap_bucket(Some(-5)), 1);
    assert!(time_gap_bucket(Some(60)) < time_gap_bucket(Some(3600)));
    assert_eq!(time_gap_bucket(Some(i64::MAX)), TIME_GAP_BUCKETS - 1);
}

/// The fused CPU encoder, one event at a time, gives every position's state as burn's
/// `SessionEncoder::forward` does (a trained-size random model, kinds and time gaps varied).
#[test]
fn the_fused_encoder_matches_the_session_encoder_at_every_position() {
    let device = Device::flex();
    let model = config().init(&device);
    let table = model.item_vectors(features(20, &device));
    let rows: Vec<i64> = vec![3, 9, 3, 14, 1, 20, 7, 2];
    let kinds: Vec<i64> = vec![1, 2, 1, 3, 3, 1, 1, 2];
    let gaps: Vec<i64> = vec![0, 5, 9, 17, 1, 0, 12, 3];
    let l = rows.len();
    let input = SessionInput {
        items: Tensor::<2, Int>::from_data(TensorData::new(rows.clone(), [1, l]), &device),
        kinds: Tensor::<2, Int>::from_data(TensorData::new(kinds.clone(), [1, l]), &device),
        gaps: Tensor::<2, Int>::from_data(TensorData::new(gaps.clone(), [1, l]), &device),
        last: Tensor::<1, Int>::from_data(TensorData::new(vec![l as i64 - 1], [1]), &device),
    };
    let want: Vec<f32> =
        model.session.forward(table.clone(), &input).into_data().try_to_vec().expect("f32");
    let vectors: Vec<f32> = table.into_data().try_to_vec().expect("f32");
    let fused = FusedSessionEncoder::new(&model.session).expect("fusable");
    let mut cache = fused.new_cache();
    for t in 0..l {
        let r = rows[t] as usize;
        fused
            .push(&mut cache, &vectors[r * 16..(r + 1) * 16], kinds[t] as usize, gaps[t] as usize)
            .expect("fits");
        for (got, want) in cache.state().iter().zip(&want[t * 16..(t + 1) * 16]) {
            assert!((got - want).abs() < 1e-5, "position {t}: {got} vs {want}");
        }
    }
    // The window is full: one more event does not fit.
    assert!(fused.push(&mut cache, &vectors[16..32], 1, 0).is_none());
}

/// The fused CPU scorer gives burn's candidate scores (state scaling, cosine or dot logits,
/// the rank bias clamped at the last rank it has), and refuses a list-context model.
#[test]
fn the_fused_scorer_matches_score_candidates() {
    let device = Device::flex();
    for scale in [None, Some(7.5)] {
        let mut model = config().with_max_candidates(4).with_logit_scale(scale).init(&device);
        // A bias that differs by rank (it starts at zero), so a wrong rank shows.
        model.scorer.rank_bias.weight = burn::module::Param::from_tensor(Tensor::<2>::from_data(
            TensorData::new(vec![0.3f32, -0.2, 0.05, 0.4], [4, 1]),
            &device,
        ));
        let table = model.item_vectors(features(20, &device));
        let h = Tensor::<2>::from_data(
            TensorData::new((0..16).map(|i| (i as f32 * 0.37).sin()).collect::<Vec<_>>(), [1, 16]),
            &device,
        );
        let rows: Vec<i64> = vec![4, 0, 11, 19, 2, 7];
        let n = rows.len();
        let candidates = CandidateInput {
            items: Tensor::<2, Int>::from_data(TensorData::new(rows.clone(), [1, n]), &device),
            ranks: Tensor::<2, Int>::from_data(
                TensorData::new((0..n as i64).map(|r| r.min(3)).collect::<Vec<_>>(), [1, n]),
                &device,
            ),
        };
        let state = model.scale_state(h.clone());
        let want: Vec<f32> = model
            .score_candidates(state.clone(), table.clone(), &candidates)
            .into_data()
            .try_to_vec()
            .expect("f32");
        let fused = FusedScorer::new(&model).expect("fusable");
        let mut got_state: Vec<f32> = h.into_data().try_to_vec().expect("f32");
        fused.scale_state(&mut got_state);
        let want_state: Vec<f32> = state.into_data().try_to_vec().expect("f32");
        for (g, w) in got_state.iter().zip(&want_state) {
            assert!((g - w).abs() < 1e-5, "state ({scale:?}): {g} vs {w}");
        }
        let vectors: Vec<f32> = table.into_data().try_to_vec().expect("f32");
        let rows: Vec<usize> = rows.iter().map(|&r| r as usize).collect();
        let mut got = Vec::new();
        fused.score(&got_state, &vectors, &rows, &mut got).expect("rows in the table");
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5 * (1.0 + w.abs()), "score ({scale:?}): {g} vs {w}");
        }
        assert!(fused.score(&got_state, &vectors, &[21], &mut got).is_none(), "row outside");
    }
    let listwise = config().with_list_context(true).init(&device);
    assert!(FusedScorer::new(&listwise).is_err());
}

/// The host padding row is the item encoder's row 0, for ids + content, ids only and content
/// only (the browser builds its engine with it instead of running the encoder at load).
#[test]
fn the_host_padding_row_is_the_encoders_row_zero() {
    let device = Device::flex();
    for (ids, content) in [(true, true), (true, false), (false, true)] {
        let cfg = config().with_use_item_ids(ids).with_use_content(content);
        let model = cfg.init(&device);
        let rows = model.item_vectors(features(3, &device));
        let [_, d] = rows.dims();
        let want: Vec<f32> = rows.into_data().convert::<f32>().try_to_vec().expect("floats");
        let got = model.items.padding_vector().expect("fusable");
        assert_eq!(got.len(), d);
        for (g, w) in got.iter().zip(&want[..d]) {
            assert!((g - w).abs() < 1e-5, "ids {ids}, content {content}: {g} vs {w}");
        }
    }
}
