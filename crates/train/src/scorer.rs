//! The trained model as a `Scorer`, so it is evaluated by exactly the same protocol code as
//! the baselines.

use burn::tensor::{Device, Tensor};
use sessionrank_core::features::{EncodedEvent, session_input};
use sessionrank_core::reranker::read_f32;
use sessionrank_data::eval::Scorer;
use sessionrank_data::{Event, ItemIdx};
use sessionrank_model::{ItemFeatures, SessionRankModel};

/// Full-catalog scorer over a model in inference mode.
#[derive(Debug)]
pub struct ModelScorer {
    model: SessionRankModel,
    /// `[n_items + 1, d]` item vectors, row 0 = padding.
    table: Tensor<2>,
    max_len: usize,
    device: Device,
    name: String,
}

impl ModelScorer {
    /// `model` must be on a non-autodiff device (call `.valid()` first).
    pub fn new(
        model: SessionRankModel,
        features: ItemFeatures,
        device: &Device,
        name: impl Into<String>,
    ) -> Self {
        let table = model.item_vectors(features);
        let max_len = model.session.positions.weight.dims()[0];
        Self { model, table, max_len, device: device.clone(), name: name.into() }
    }
}

/// A dataset prefix as the engine's events (catalog item `i` is table row `i + 1`).
pub fn encode_prefix(prefix: &[Event]) -> Vec<EncodedEvent> {
    prefix
        .iter()
        .map(|e| EncodedEvent { row: e.item + 1, kind: e.kind, timestamp: e.timestamp })
        .collect()
}

impl Scorer for ModelScorer {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn n_items(&self) -> usize {
        self.table.dims()[0] - 1
    }

    fn score_batch(&self, prefixes: &[&[Event]], out: &mut [f32]) {
        let n = self.n_items();
        let encoded: Vec<Vec<EncodedEvent>> = prefixes.iter().map(|p| encode_prefix(p)).collect();
        let refs: Vec<&[EncodedEvent]> = encoded.iter().map(Vec::as_slice).collect();
        let input = session_input(&refs, self.max_len, &self.device);
        let b = prefixes.len();
        let logits = self.model.forward_full(self.table.clone(), &input).slice([0..b, 1..n + 1]); // [b, n]
        write_scores(logits, out);
    }

    fn score_candidates(&self, prefix: &[Event], candidates: &[ItemIdx]) -> Vec<f32> {
        candidates_of_full(self, prefix, candidates)
    }
}

/// `scores` (`[b, n_items]`) into `out`. A device failure during evaluation scores nothing
/// (every item ties last): it shows up as zero metrics, never as silently wrong ones.
pub(crate) fn write_scores(scores: Tensor<2>, out: &mut [f32]) {
    match read_f32(scores) {
        Ok(v) if v.len() == out.len() => out.copy_from_slice(&v),
        _ => out.fill(f32::NEG_INFINITY),
    }
}

/// A full-catalog scorer's scores of `candidates` (an unknown index scores last).
pub(crate) fn candidates_of_full<S: Scorer + ?Sized>(
    scorer: &S,
    prefix: &[Event],
    candidates: &[ItemIdx],
) -> Vec<f32> {
    let mut all = vec![0f32; scorer.n_items()];
    scorer.score_batch(&[prefix], &mut all);
    candidates.iter().map(|&c| all.get(c as usize).copied().unwrap_or(f32::NEG_INFINITY)).collect()
}
