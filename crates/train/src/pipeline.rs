//! One experiment end to end: tokenizer → features → training → evaluation (model and
//! baselines, full ranking and re-ranking) → bundle → results file → report. The CLI's
//! `train` and `eval` commands are thin wrappers around this.

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::index::sample;
use serde::{Deserialize, Serialize};
use sessionrank_core::features::FeatureEncoder;
use sessionrank_core::{ItemTokenizer, ModelBundle};
use sessionrank_data::baselines::{ItemKnn, Popularity, SessionKnn};
use sessionrank_data::eval::{Scorer, UpstreamOrder, evaluate_full, evaluate_rerank};
use sessionrank_data::sample::{CandidateSampler, SamplerSpec};
use sessionrank_data::{Dataset, RankingMetrics, TestCase};
use sessionrank_model::{ModelConfig, SessionRankModel};

use crate::export::{BundleParts, build_bundle};
use crate::trainer::{EpochLog, catalog_features};
use crate::{ModelScorer, Result, TrainConfig, TrainError};

/// Vocabulary and feature parameters chosen before the model config can be completed.
#[derive(Debug, Clone)]
pub struct FeatureOptions {
    pub vocab_size: usize,
    pub min_frequency: u64,
    pub max_tokens: usize,
}

impl Default for FeatureOptions {
    fn default() -> Self {
        Self { vocab_size: 20_000, min_frequency: 2, max_tokens: 16 }
    }
}

/// Train the tokenizer on the catalog's own text and build the feature encoder.
pub fn build_encoder(
    dataset: &Dataset,
    opts: &FeatureOptions,
    max_len: usize,
    max_candidates: usize,
) -> Result<FeatureEncoder> {
    let texts: Vec<&str> =
        dataset.catalog.items().iter().map(|i| i.text.as_str()).filter(|t| !t.is_empty()).collect();
    let has_text = !texts.is_empty();
    let tokenizer = ItemTokenizer::train(texts.into_iter(), opts.vocab_size, opts.min_frequency)?;
    // A catalog without text (Diginetica's SR-GNN split) gets a 1-token slot: the content
    // tower then reads category and price only, at no cost.
    let max_tokens = if has_text { opts.max_tokens } else { 1 };
    Ok(FeatureEncoder::from_catalog(
        &dataset.catalog,
        tokenizer,
        max_tokens,
        max_len,
        max_candidates,
    )?)
}

/// Fill the catalog-dependent fields of a model config.
pub fn complete_config(config: ModelConfig, encoder: &FeatureEncoder) -> ModelConfig {
    ModelConfig {
        n_items: encoder.n_items(),
        vocab_size: encoder.tokenizer.vocab_size(),
        n_categories: encoder.n_categories(),
        ..config
    }
}

/// Scores of one system under every protocol.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SystemMetrics {
    pub full: RankingMetrics,
    /// Re-ranking protocols by label (`uniform-99`, `popularity-99`, `retriever-100`).
    pub rerank: std::collections::BTreeMap<String, RankingMetrics>,
}

/// How the test set is evaluated.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Mask prefix items in full ranking (S3-Rec protocol, Amazon Beauty).
    pub exclude_history: bool,
    /// Re-ranking protocols run on this many test cases (a fixed random subset), 0 = none.
    pub rerank_cases: usize,
    pub baselines: bool,
    pub seed: u64,
}

/// Evaluate one scorer under the full protocol and every re-ranking protocol.
pub fn evaluate_system(
    scorer: &dyn Scorer,
    dataset: &Dataset,
    rerank_cases: &[TestCase],
    samplers: &[CandidateSampler],
    opts: &EvalOptions,
) -> SystemMetrics {
    let full =
        evaluate_full(scorer, &dataset.test, dataset.catalog.len(), 256, opts.exclude_history);
    let rerank = samplers
        .iter()
        .map(|s| (s.spec().label(), evaluate_rerank(scorer, rerank_cases, s)))
        .collect();
    SystemMetrics { full, rerank }
}

/// Model and baselines on the test set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evaluation {
    pub model: SystemMetrics,
    pub baselines: std::collections::BTreeMap<String, SystemMetrics>,
    pub eval_seconds: f64,
}

/// The fixed subset of test cases the re-ranking protocols run on (`count`, seeded).
pub fn rerank_subset(dataset: &Dataset, count: usize, seed: u64) -> Vec<TestCase> {
    let mut rng = StdRng::seed_from_u64(seed);
    if count == 0 {
        Vec::new()
    } else if dataset.test.len() > count {
        let mut idx = sample(&mut rng, dataset.test.len(), count).into_vec();
        idx.sort_unstable();
        idx.into_iter().map(|i| dataset.test[i].clone()).collect()
    } else {
        dataset.test.clone()
    }
}

pub fn evaluate(
    model: &SessionRankModel,
    encoder: &FeatureEncoder,
    dataset: &Dataset,
    device: &Device,
    opts: &EvalOptions,
) -> Evaluation {
    let scorer =
        ModelScorer::new(model.clone(), catalog_features(encoder, device), device, "sessionrank");
    evaluate_scorer(&scorer, dataset, opts)
}

/// [`evaluate`] for any full-catalog scorer over `dataset`'s item index (e.g. an ensemble
/// teacher, [`crate::Teacher`]).
pub fn evaluate_scorer(scorer: &dyn Scorer, dataset: &Dataset, opts: &EvalOptions) -> Evaluation {
    let start = Instant::now();
    let n = dataset.catalog.len();
    let rerank_cases = rerank_subset(dataset, opts.rerank_cases, opts.seed);
    let samplers: Vec<CandidateSampler> = if rerank_cases.is_empty() {
        Vec::new()
    } else {
        [
            SamplerSpec::uniform_99(opts.seed),
            SamplerSpec::popularity_99(opts.seed),
            SamplerSpec::retriever_100(),
        ]
        .into_iter()
        .map(|s| CandidateSampler::new(s, &dataset.train, n))
        .collect()
    };
    tracing::info!("evaluating {} on {} test cases", scorer.name(), dataset.test.len());
    let model_metrics = evaluate_system(scorer, dataset, &rerank_cases, &samplers, opts);
    let mut baselines = std::collections::BTreeMap::new();
    if opts.baselines {
        let systems: Vec<(&str, Box<dyn Scorer>)> = vec![
            ("popularity", Box::new(Popularity::fit(&dataset.train, n))),
            ("item-knn", Box::new(ItemKnn::fit(&dataset.train, n))),
            ("session-knn", Box::new(SessionKnn::fit(&dataset.train, n))),
        ];
        for (name, s) in systems {
            tracing::info!("evaluating baseline {name}");
            baselines.insert(
                name.to_string(),
                evaluate_system(s.as_ref(), dataset, &rerank_cases, &samplers, opts),
            );
        }
        if !rerank_cases.is_empty() {
            let up = UpstreamOrder { n_items: n };
            let rerank = samplers
                .iter()
                .map(|s| (s.spec().label(), evaluate_rerank(&up, &rerank_cases, s)))
                .collect();
            let full = evaluate_full(&up, &dataset.test[..0], n, 1, false);
            baselines.insert("upstream-order".to_string(), SystemMetrics { full, rerank });
        }
    }
    Evaluation { model: model_metrics, baselines, eval_seconds: start.elapsed().as_secs_f64() }
}

/// Everything a run produced, as written to `results/*.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExperimentRecord {
    pub command: String,
    pub device: String,
    pub machine: String,
    pub dataset: String,
    pub train_seconds: f64,
    pub targets_per_second: f64,
    pub best_epoch: usize,
    pub config: serde_json::Value,
    pub weight_bytes: usize,
    pub history: Vec<EpochLog>,
    pub evaluation: Evaluation,
}

/// Bytes of the model's weights as shipped (burnpack).
pub fn weight_bytes(model: &SessionRankModel) -> usize {
    sessionrank_core::reranker::weights_bytes(model).map(|b| b.len()).unwrap_or(0)
}

/// Paths a training run writes to.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    pub bundle_dir: Option<PathBuf>,
    pub checkpoint_dir: Option<PathBuf>,
}

/// Build a bundle for a trained model.
pub fn bundle_for(
    dataset: &Dataset,
    config: &ModelConfig,
    model: &SessionRankModel,
    encoder: &FeatureEncoder,
    metrics: serde_json::Value,
    safetensors: bool,
) -> Result<ModelBundle> {
    let created_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    build_bundle(BundleParts {
        dataset: &dataset.name,
        config,
        model,
        encoder,
        catalog: &dataset.catalog,
        metrics,
        safetensors,
        created_at,
    })
}

/// Train and check the config's fields agree with the encoder.
pub fn train_on(
    dataset: &Dataset,
    encoder: &FeatureEncoder,
    config: &TrainConfig,
    device: &Device,
    outputs: &Outputs,
) -> Result<crate::TrainOutcome> {
    if config.model.n_items != encoder.n_items() {
        return Err(TrainError::Config("model.n_items does not match the catalog".into()));
    }
    crate::train(dataset, encoder, config, device, outputs.checkpoint_dir.as_deref())
}
