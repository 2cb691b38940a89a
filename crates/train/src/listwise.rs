//! The list-wise stage: teaches the model's [`ListScorer`] to re-rank a candidate list the way
//! the product calls it (PRM, Pei et al., RecSys'19).
//!
//! Next-item training only shapes the session and item towers; the scorer's upstream-rank
//! bias and its optional self-attention over the list (`ModelConfig::list_context`) get no
//! gradient there. This stage trains them, and only them, on candidate lists that look like
//! a storefront's: the top 100 of an item-kNN retriever in retriever order, for held-out
//! training sessions, with a cross-entropy over the list on the item clicked next.
//!
//! Why only the scorer: the towers are what the browser shares with the server (item vectors
//! travel with the candidate page), so they stay fixed; the scorer is small and ships in the
//! browser bundle. Why held-out sessions: the retriever is fitted on the first 90% of the
//! training sessions and the lists are drawn from the last 10%, so it misses targets as
//! often as it does on the test set and the rank bias learns how far to trust it.

use burn::config::Config;
use burn::module::Module;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use sessionrank_core::features::{EncodedEvent, FeatureEncoder, session_input};
use sessionrank_core::reranker::read_f32;
use sessionrank_data::eval::{Scorer, evaluate_rerank};
use sessionrank_data::sample::{CandidateSampler, SamplerSpec};
use sessionrank_data::{Dataset, Event, ItemIdx, RankingMetrics, TestCase};
use sessionrank_model::{CandidateInput, ListScorer, ModelConfig, SessionRankModel, l2_normalize};

use crate::features::catalog_features;
use crate::scorer::encode_prefix;
use crate::{Result, TrainError};

/// Settings of the list-wise stage.
#[derive(Config, Debug, PartialEq)]
pub struct ListwiseConfig {
    /// Add a self-attention layer over the candidate list (PRM's list context); off trains
    /// the upstream-rank bias alone.
    #[config(default = false)]
    pub list_context: bool,
    #[config(default = 3)]
    pub epochs: usize,
    /// Lists drawn from held-out training sessions (one cut per session).
    #[config(default = 20000)]
    pub cases: usize,
    /// Candidates per list (the retriever's depth).
    #[config(default = 100)]
    pub depth: usize,
    #[config(default = 64)]
    pub batch_size: usize,
    #[config(default = 1e-3)]
    pub lr: f64,
    #[config(default = 42)]
    pub seed: u64,
}

/// What the stage did, for the results file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListwiseReport {
    pub list_context: bool,
    /// Lists trained on (the ones whose target the retriever returned).
    pub lists: usize,
    /// Share of drawn cases whose target was in the retriever's list.
    pub retriever_recall: f64,
    /// Mean training loss per epoch.
    pub epoch_loss: Vec<f64>,
    pub seconds: f64,
}

/// One training list: the session state (as the scorer sees it) and the list.
struct ListCase {
    session: Vec<f32>,
    rows: Vec<i64>,
    target_pos: usize,
}

/// Train the scorer of `model` (inference mode, on `device`'s inner device) on retriever
/// lists of `dataset`'s training sessions; returns the model with the trained scorer and a
/// config whose `list_context` matches it (write bundles with that config).
pub fn train_list_scorer(
    model: &SessionRankModel,
    model_config: &ModelConfig,
    encoder: &FeatureEncoder,
    dataset: &Dataset,
    config: &ListwiseConfig,
    device: &Device,
) -> Result<(SessionRankModel, ModelConfig, ListwiseReport)> {
    let start = std::time::Instant::now();
    if config.epochs == 0 || config.cases == 0 {
        return Err(TrainError::Config(
            "the list-wise stage needs epochs > 0 and cases > 0".into(),
        ));
    }
    if config.depth == 0 || config.depth > model_config.max_candidates {
        return Err(TrainError::Config(format!(
            "list depth must be 1..={} (the model's max_candidates), got {}",
            model_config.max_candidates, config.depth
        )));
    }
    let inner = device.clone().inner();
    let n = dataset.catalog.len();
    let train = &dataset.train;
    let cut = train.len() * 9 / 10;
    if cut == 0 || cut == train.len() {
        return Err(TrainError::Config(format!(
            "the list-wise stage needs at least 10 training sessions, got {}",
            train.len()
        )));
    }
    let (fit, held_out) = train.split_at(cut);
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut cases: Vec<TestCase> = held_out
        .iter()
        .filter(|s| s.events.len() >= 2)
        .map(|s| {
            let k = rand::Rng::random_range(&mut rng, 1..s.events.len());
            TestCase { prefix: s.events[..k].to_vec(), target: s.events[k].item }
        })
        .collect();
    cases.shuffle(&mut rng);
    cases.truncate(config.cases);
    if cases.is_empty() {
        return Err(TrainError::Config(
            "no held-out training session has two or more events".into(),
        ));
    }
    tracing::info!(
        "list-wise stage: retrieving {} lists of {} from {} sessions",
        cases.len(),
        config.depth,
        fit.len()
    );
    let sampler = CandidateSampler::new(SamplerSpec::Retriever { depth: config.depth }, fit, n);
    let lists = sampler.candidates(&cases, 0);
    let drawn = cases.len();

    // Session states and the item table exactly as `forward_rerank` hands them to the scorer.
    let raw_table = model.item_vectors(catalog_features(encoder, &inner));
    let table =
        if model.logit_scale > 0.0 { l2_normalize(raw_table.clone()) } else { raw_table.clone() };
    let (max_len, d) = (model_config.max_len, model_config.d_model);
    let mut train_cases = Vec::new();
    for (chunk, chunk_lists) in cases.chunks(256).zip(lists.chunks(256)) {
        let states = read_f32(session_states(model, &raw_table, chunk, max_len, &inner))?;
        for ((state, _case), list) in states.chunks_exact(d).zip(chunk).zip(chunk_lists) {
            if let Some(pos) = list.target_pos {
                train_cases.push(ListCase {
                    session: state.to_vec(),
                    rows: list.items.iter().map(|&i| i64::from(i) + 1).collect(),
                    target_pos: pos,
                });
            }
        }
    }
    if train_cases.is_empty() {
        return Err(TrainError::Config(
            "the retriever returned no list with its target: nothing to learn from".into(),
        ));
    }
    let recall = train_cases.len() as f64 / drawn as f64;
    tracing::info!(
        "list-wise stage: {} lists with their target ({:.1}% retriever recall)",
        train_cases.len(),
        100.0 * recall
    );

    let out_config = ModelConfig { list_context: config.list_context, ..model_config.clone() };
    let ad = device.clone().autodiff();
    ad.seed(config.seed);
    let mut scorer = ListScorer::new(&out_config, &ad);
    let mut optim: ModuleOptimizer = AdamWConfig::new()
        .with_weight_decay(0.01)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(1.0)))
        .init();
    let table_ad = table.autodiff();
    let mut epoch_loss = Vec::new();
    let mut order: Vec<usize> = (0..train_cases.len()).collect();
    for epoch in 0..config.epochs {
        order.shuffle(&mut rng);
        let (mut sum, mut count) = (0.0, 0usize);
        for ids in order.chunks(config.batch_size) {
            let b = ids.len();
            let len = config.depth;
            let mut s = Vec::with_capacity(b * d);
            let mut rows = Vec::with_capacity(b * len);
            let mut targets = Vec::with_capacity(b);
            for &i in ids {
                let c = &train_cases[i];
                s.extend_from_slice(&c.session);
                rows.extend_from_slice(&c.rows);
                targets.push(c.target_pos as i64);
            }
            let session = Tensor::<2>::from_data(TensorData::new(s, [b, d]), &ad);
            let cand = CandidateInput {
                items: Tensor::<2, Int>::from_data(TensorData::new(rows, [b, len]), &ad),
                ranks: Tensor::<2, Int>::from_data(
                    TensorData::new(
                        (0..b).flat_map(|_| 0..len as i64).collect::<Vec<_>>(),
                        [b, len],
                    ),
                    &ad,
                ),
            };
            let targets = Tensor::<2, Int>::from_data(TensorData::new(targets, [b, 1]), &ad);
            let scores = scorer.forward(session, table_ad.clone(), &cand); // [b, len]
            let loss = log_softmax(scores, 1).gather(1, targets).neg().mean();
            let grads = GradientsParams::from_grads(loss.backward(), &scorer);
            scorer = optim.step(config.lr, scorer, grads);
            if count % 20 == 0 {
                let v = loss.into_scalar::<f32>() as f64;
                if !v.is_finite() {
                    return Err(TrainError::Diverged(
                        v as f32,
                        epoch * order.len().div_ceil(config.batch_size) + count,
                    ));
                }
                sum += v;
            }
            count += 1;
        }
        let mean = sum / count.div_ceil(20).max(1) as f64;
        tracing::info!("list-wise stage epoch {}: loss {mean:.4}", epoch + 1);
        epoch_loss.push(mean);
    }
    let mut out = model.clone();
    out.scorer = scorer.valid();
    let report = ListwiseReport {
        list_context: config.list_context,
        lists: train_cases.len(),
        retriever_recall: recall,
        epoch_loss,
        seconds: start.elapsed().as_secs_f64(),
    };
    Ok((out, out_config, report))
}

/// Session states as [`SessionRankModel::forward_rerank`] hands them to the scorer: `[b, d]`.
/// `raw_table` is the item encoder's output (what the session encoder reads).
fn session_states(
    model: &SessionRankModel,
    raw_table: &Tensor<2>,
    cases: &[TestCase],
    max_len: usize,
    device: &Device,
) -> Tensor<2> {
    let encoded: Vec<Vec<EncodedEvent>> = cases.iter().map(|c| encode_prefix(&c.prefix)).collect();
    let refs: Vec<&[EncodedEvent]> = encoded.iter().map(Vec::as_slice).collect();
    let input = session_input(&refs, max_len, device);
    let h = model.session.forward_last(raw_table.clone(), &input);
    if model.logit_scale > 0.0 { l2_normalize(h) * model.logit_scale } else { h }
}

/// The model as the product calls it: [`SessionRankModel::forward_rerank`] on a candidate
/// list in upstream (retriever) order, so the rank bias and the list context count. Used for
/// the retriever protocol, where the list order means what it means in a storefront.
#[derive(Debug)]
pub struct ListAwareScorer {
    model: SessionRankModel,
    /// Raw item vectors `[n_items + 1, d]` (the session encoder reads these).
    table: Tensor<2>,
    max_len: usize,
    max_rank: i64,
    device: Device,
}

impl ListAwareScorer {
    pub fn new(
        model: SessionRankModel,
        encoder: &FeatureEncoder,
        config: &ModelConfig,
        device: &Device,
    ) -> Self {
        let table = model.item_vectors(catalog_features(encoder, device));
        Self {
            model,
            table,
            max_len: config.max_len,
            max_rank: config.max_candidates.saturating_sub(1) as i64,
            device: device.clone(),
        }
    }
}

impl Scorer for ListAwareScorer {
    fn name(&self) -> String {
        "sessionrank (list scorer)".into()
    }

    fn n_items(&self) -> usize {
        self.table.dims()[0] - 1
    }

    fn score_batch(&self, _prefixes: &[&[Event]], out: &mut [f32]) {
        // Only the re-ranking protocol reaches this scorer; full ranking has no list.
        out.fill(f32::NEG_INFINITY);
    }

    fn score_candidates(&self, prefix: &[Event], candidates: &[ItemIdx]) -> Vec<f32> {
        let n = candidates.len();
        if n == 0 {
            return Vec::new();
        }
        let encoded = encode_prefix(prefix);
        let input = session_input(&[encoded.as_slice()], self.max_len, &self.device);
        let cand = CandidateInput {
            items: Tensor::<2, Int>::from_data(
                TensorData::new(
                    candidates.iter().map(|&c| i64::from(c) + 1).collect::<Vec<_>>(),
                    [1, n],
                ),
                &self.device,
            ),
            ranks: Tensor::<2, Int>::from_data(
                TensorData::new(
                    (0..n as i64).map(|r| r.min(self.max_rank)).collect::<Vec<_>>(),
                    [1, n],
                ),
                &self.device,
            ),
        };
        read_f32(self.model.forward_rerank(self.table.clone(), &input, &cand))
            .unwrap_or_else(|_| vec![f32::NEG_INFINITY; n])
    }
}

/// Retriever-100 metrics of a model through its list scorer, on the same fixed subset of
/// test cases as [`crate::pipeline::evaluate`] uses (`rerank_cases`, seeded by `seed`).
pub fn evaluate_listwise(
    scorer: &ListAwareScorer,
    dataset: &Dataset,
    rerank_cases: usize,
    seed: u64,
) -> RankingMetrics {
    let cases = crate::pipeline::rerank_subset(dataset, rerank_cases, seed);
    let sampler =
        CandidateSampler::new(SamplerSpec::retriever_100(), &dataset.train, dataset.catalog.len());
    evaluate_rerank(scorer, &cases, &sampler)
}
