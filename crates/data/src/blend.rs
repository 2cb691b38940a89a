//! A hybrid of a model with session-kNN: the mixture of their next-item distributions,
//! `(1 - w) · softmax(model) + w · knn / Σ knn`.
//!
//! Why a mixture: session-kNN is strong on session data (on Diginetica it trails the
//! Transformer by under 2 P@20) and it is right in different places — it remembers exact
//! item combinations of recent sessions, which a small embedding model smooths over. Mixing
//! *probabilities* keeps both scales honest: the model's logits become a distribution by
//! softmax, the kNN votes by their sum, and `w` reads as the share of belief each gets. The
//! hybrid lives on the server (kNN needs every training session, which never ships to a
//! browser); it is a teacher and a benchmark, and the browser model learns from it by
//! distillation.
//!
//! The weight is chosen on validation cases ([`blend_sweep`] scores every candidate weight
//! in one pass over them), never on the test set.

use crate::metrics::{MetricAccumulator, RankingMetrics, rank_of};
use crate::par::map_indices;
use crate::scorer::Scorer;
use crate::session::{Event, ItemIdx, TestCase};

/// `(1 - weight) · softmax(model) + weight · votes / Σ votes`, as its natural log (a score
/// whose order is the mixture's), written into `model_row`. `votes` are non-negative kNN
/// scores; a row without any vote falls back to the model alone. `weight` in `0..=1`.
pub fn mix_row(model_row: &mut [f32], votes: &[f32], weight: f32) {
    let (max, z, total) = row_sums(model_row, votes);
    let (a, b) = shares(z > 0.0, total > 0.0, weight);
    for (m, &k) in model_row.iter_mut().zip(votes) {
        let p = if m.is_finite() { a * (*m - max).exp() / z } else { 0.0 };
        let q = if k.is_finite() && k > 0.0 { b * k / total } else { 0.0 };
        *m = (p + q).ln();
    }
}

/// A row's largest finite logit, its softmax normaliser and its votes' total.
fn row_sums(model_row: &[f32], votes: &[f32]) -> (f32, f32, f32) {
    let max = model_row.iter().copied().filter(|v| v.is_finite()).fold(f32::NEG_INFINITY, f32::max);
    let z: f32 = model_row.iter().map(|&v| if v.is_finite() { (v - max).exp() } else { 0.0 }).sum();
    let total: f32 = votes.iter().copied().filter(|v| v.is_finite() && *v > 0.0).sum();
    (max, z, total)
}

/// The two distributions' shares of the mixture: `(1 - weight, weight)`, or all to the one
/// side that has any mass.
fn shares(model_mass: bool, vote_mass: bool, weight: f32) -> (f32, f32) {
    match (model_mass, vote_mass) {
        (true, true) => (1.0 - weight, weight),
        (true, false) => (1.0, 0.0),
        (false, true) => (0.0, 1.0),
        (false, false) => (0.0, 0.0),
    }
}

/// A model (scores read as logits) mixed with a vote-counting scorer (session-kNN) by
/// [`mix_row`].
pub struct KnnBlend<M, K> {
    pub model: M,
    pub knn: K,
    /// Share of the kNN distribution, `0..=1`.
    pub weight: f32,
}

impl<M: Scorer, K: Scorer> Scorer for KnnBlend<M, K> {
    fn name(&self) -> String {
        format!("{}+{}@{}", self.model.name(), self.knn.name(), self.weight)
    }

    fn n_items(&self) -> usize {
        self.model.n_items()
    }

    fn score_batch(&self, prefixes: &[&[Event]], out: &mut [f32]) {
        let n = self.n_items();
        self.model.score_batch(prefixes, out);
        let mut votes = vec![0f32; out.len()];
        self.knn.score_batch(prefixes, &mut votes);
        for (row, v) in out.chunks_mut(n).zip(votes.chunks(n)) {
            mix_row(row, v, self.weight);
        }
    }

    fn score_candidates(&self, prefix: &[Event], candidates: &[ItemIdx]) -> Vec<f32> {
        let mut row = vec![0f32; self.n_items()];
        self.score_batch(&[prefix], &mut row);
        candidates
            .iter()
            .map(|&c| row.get(c as usize).copied().unwrap_or(f32::NEG_INFINITY))
            .collect()
    }
}

/// Full-ranking metrics of the blend at every weight of `weights` on `cases` (validation
/// cases: this is where the weight is chosen), computing each scorer once per case.
/// `exclude_history` masks the prefix's items as [`crate::eval::evaluate_full`] does.
pub fn blend_sweep<M: Scorer + ?Sized, K: Scorer + ?Sized>(
    model: &M,
    knn: &K,
    cases: &[TestCase],
    weights: &[f32],
    exclude_history: bool,
) -> Vec<RankingMetrics> {
    const BATCH: usize = 256;
    let n = model.n_items();
    let mut accs: Vec<MetricAccumulator> =
        weights.iter().map(|_| MetricAccumulator::new()).collect();
    let mut scores = vec![0f32; BATCH.min(cases.len()) * n];
    let mut votes = scores.clone();
    let mut mixed = scores.clone();
    let mut ranks = vec![0usize; BATCH];
    let mut mass = vec![(false, false); BATCH];
    for batch in cases.chunks(BATCH) {
        let prefixes: Vec<&[Event]> = batch.iter().map(|c| c.prefix.as_slice()).collect();
        let rows = batch.len() * n;
        model.score_batch(&prefixes, &mut scores[..rows]);
        knn.score_batch(&prefixes, &mut votes[..rows]);
        // Each row's two distributions once (`scores` → softmax, `votes` → shares); every
        // weight is then one multiply-add per item. The mixture itself, not its log, is
        // ranked: the order is the same and the sweep needs no logarithm.
        for (k, (p, q)) in scores[..rows].chunks_mut(n).zip(votes[..rows].chunks_mut(n)).enumerate()
        {
            let (max, z, total) = row_sums(p, q);
            for v in p.iter_mut() {
                *v = if v.is_finite() && z > 0.0 { (*v - max).exp() / z } else { 0.0 };
            }
            for v in q.iter_mut() {
                *v = if v.is_finite() && *v > 0.0 && total > 0.0 { *v / total } else { 0.0 };
            }
            mass[k] = (z > 0.0, total > 0.0);
        }
        for (w, acc) in weights.iter().zip(accs.iter_mut()) {
            for (k, row) in mixed[..rows].chunks_mut(n).enumerate() {
                let (a, b) = shares(mass[k].0, mass[k].1, *w);
                let (p, q) = (&scores[k * n..(k + 1) * n], &votes[k * n..(k + 1) * n]);
                for ((m, &p), &q) in row.iter_mut().zip(p).zip(q) {
                    *m = a * p + b * q;
                }
                if exclude_history {
                    for e in &batch[k].prefix {
                        if e.item != batch[k].target
                            && let Some(s) = row.get_mut(e.item as usize)
                        {
                            *s = f32::NEG_INFINITY;
                        }
                    }
                }
            }
            let out: &[f32] = &mixed[..rows];
            let ranks = &mut ranks[..batch.len()];
            map_indices(ranks, |k| rank_of(&out[k * n..(k + 1) * n], batch[k].target as usize));
            for (case, &rank) in batch.iter().zip(ranks.iter()) {
                acc.add(rank, case.prefix.len());
            }
        }
    }
    accs.iter().map(|a| a.finish(false)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::evaluate_full;

    struct Fixed(Vec<f32>, &'static str);
    impl Scorer for Fixed {
        fn name(&self) -> String {
            self.1.into()
        }
        fn n_items(&self) -> usize {
            self.0.len()
        }
        fn score_batch(&self, prefixes: &[&[Event]], out: &mut [f32]) {
            for row in out.chunks_mut(self.0.len()).take(prefixes.len()) {
                row.copy_from_slice(&self.0);
            }
        }
    }

    fn probs(row: &[f32]) -> Vec<f32> {
        row.iter().map(|v| v.exp()).collect()
    }

    #[test]
    fn the_mixture_by_hand() {
        // softmax([0, ln 3]) = [0.25, 0.75]; votes [3, 1] → [0.75, 0.25].
        let mut row = vec![0.0, 3f32.ln()];
        mix_row(&mut row, &[3.0, 1.0], 0.5);
        let p = probs(&row);
        assert!((p[0] - 0.5).abs() < 1e-6 && (p[1] - 0.5).abs() < 1e-6, "{p:?}");
        // Weight 0 is the model's softmax, weight 1 the votes' distribution.
        let mut row = vec![0.0, 3f32.ln()];
        mix_row(&mut row, &[3.0, 1.0], 0.0);
        assert!((probs(&row)[1] - 0.75).abs() < 1e-6);
        let mut row = vec![0.0, 3f32.ln()];
        mix_row(&mut row, &[3.0, 1.0], 1.0);
        assert!((probs(&row)[0] - 0.75).abs() < 1e-6);
        // No votes at all: the model alone, whatever the weight.
        let mut row = vec![0.0, 3f32.ln()];
        mix_row(&mut row, &[0.0, 0.0], 0.9);
        assert!((probs(&row)[1] - 0.75).abs() < 1e-6);
        // A masked model score (−∞) keeps only the kNN's share; large logits do not overflow.
        let mut row = vec![f32::NEG_INFINITY, 1000.0, 999.0];
        mix_row(&mut row, &[1.0, 0.0, 0.0], 0.5);
        let p = probs(&row);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5 && (p[0] - 0.5).abs() < 1e-6, "{p:?}");
    }

    #[test]
    fn the_sweep_agrees_with_the_blend_scorer() {
        let model = Fixed(vec![0.0, 1.0, 2.0, 3.0, 4.0], "m");
        let knn = Fixed(vec![5.0, 0.0, 0.0, 1.0, 0.0], "k");
        let cases: Vec<TestCase> = [0, 0, 3, 4, 1]
            .into_iter()
            .map(|t| TestCase { prefix: vec![Event::view((t + 1) % 5)], target: t })
            .collect();
        let weights = [0.0, 0.3, 0.9];
        let swept = blend_sweep(&model, &knn, &cases, &weights, false);
        for (w, m) in weights.iter().zip(&swept) {
            let blend = KnnBlend { model: &model, knn: &knn, weight: *w };
            assert_eq!(*m, evaluate_full(&blend, &cases, 5, 2, false), "weight {w}");
        }
        // Weight 0.9 puts item 0 (most votes) first, where the model alone ranks it last.
        assert!(swept[2].mrr_at_20 > swept[0].mrr_at_20, "{swept:?}");
        let masked = blend_sweep(&model, &knn, &cases, &weights, true);
        let blend = KnnBlend { model: &model, knn: &knn, weight: 0.3 };
        assert_eq!(masked[1], evaluate_full(&blend, &cases, 5, 3, true));
    }
}
