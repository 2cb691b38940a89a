//! Evaluation protocols: full ranking and re-ranking of candidate lists.
//!
//! Both protocols are deterministic (given the sampler's seed) and independent of batch size
//! and thread count. Progress is logged with `tracing` at roughly every 10% of the cases; the
//! `*_with_progress` variants also call a callback with `(done, total)` after each batch, for a
//! progress bar.

use crate::metrics::{MISS, MetricAccumulator, RankingMetrics, rank_of};
use crate::par::map_indices;
use crate::sample::CandidateSampler;
pub use crate::scorer::{Scorer, UpstreamOrder};
use crate::session::{Event, TestCase};

/// Full ranking over the whole catalog (the SR-GNN and S3-Rec "full" protocols).
///
/// `exclude_history` removes the prefix's items from the ranking (score −∞), except the target
/// itself: that is the S3-Rec/SASRec full-ranking protocol for Amazon Beauty, where a user rarely
/// reviews an item twice. SR-GNN-style session protocols (Diginetica) do **not** mask — about a
/// fifth of Diginetica's test targets repeat a prefix item.
///
/// `n_items` must equal `scorer.n_items()`; `batch_size` bounds memory
/// (`batch_size × n_items` floats).
pub fn evaluate_full<S: Scorer + ?Sized>(
    scorer: &S,
    cases: &[TestCase],
    n_items: usize,
    batch_size: usize,
    exclude_history: bool,
) -> RankingMetrics {
    evaluate_full_with_progress(scorer, cases, n_items, batch_size, exclude_history, &mut |_, _| {})
}

/// [`evaluate_full`] with a `(done, total)` callback after each batch.
pub fn evaluate_full_with_progress<S: Scorer + ?Sized>(
    scorer: &S,
    cases: &[TestCase],
    n_items: usize,
    batch_size: usize,
    exclude_history: bool,
    progress: &mut dyn FnMut(usize, usize),
) -> RankingMetrics {
    assert_eq!(
        n_items,
        scorer.n_items(),
        "evaluate_full: n_items differs from the scorer's catalog size"
    );
    let batch_size = batch_size.max(1);
    let mut acc = MetricAccumulator::new();
    let mut scores = vec![0.0f32; batch_size.min(cases.len()) * n_items];
    let mut ranks = vec![0usize; batch_size];
    let mut log = ProgressLog::new(&scorer.name(), "full", cases.len());
    let mut done = 0;
    for batch in cases.chunks(batch_size) {
        let prefixes: Vec<&[Event]> = batch.iter().map(|c| c.prefix.as_slice()).collect();
        let out = &mut scores[..batch.len() * n_items];
        scorer.score_batch(&prefixes, out);
        if exclude_history {
            for (case, row) in batch.iter().zip(out.chunks_mut(n_items)) {
                for e in &case.prefix {
                    if e.item != case.target
                        && let Some(s) = row.get_mut(e.item as usize)
                    {
                        *s = f32::NEG_INFINITY;
                    }
                }
            }
        }
        let out: &[f32] = out;
        let ranks = &mut ranks[..batch.len()];
        map_indices(ranks, |k| {
            rank_of(&out[k * n_items..(k + 1) * n_items], batch[k].target as usize)
        });
        for (case, &rank) in batch.iter().zip(ranks.iter()) {
            acc.add(rank, case.prefix.len());
        }
        done += batch.len();
        progress(done, cases.len());
        log.tick(done, &acc);
    }
    acc.finish(false)
}

/// Re-ranking of per-case candidate lists built by `sampler` (see [`crate::sample`]).
///
/// The rank of the target is its rank among the candidates by the scorer's
/// [`Scorer::score_candidates`]; a case whose target the retriever did not return counts as a
/// miss, and [`RankingMetrics::retriever_recall`] reports how often that happened.
pub fn evaluate_rerank<S: Scorer + ?Sized>(
    scorer: &S,
    cases: &[TestCase],
    sampler: &CandidateSampler,
) -> RankingMetrics {
    evaluate_rerank_with_progress(scorer, cases, sampler, &mut |_, _| {})
}

/// [`evaluate_rerank`] with a `(done, total)` callback after each chunk of cases.
pub fn evaluate_rerank_with_progress<S: Scorer + ?Sized>(
    scorer: &S,
    cases: &[TestCase],
    sampler: &CandidateSampler,
    progress: &mut dyn FnMut(usize, usize),
) -> RankingMetrics {
    const CHUNK: usize = 512;
    let mut acc = MetricAccumulator::new();
    let mut log = ProgressLog::new(&scorer.name(), &sampler.spec().label(), cases.len());
    let mut done = 0;
    for (ci, chunk) in cases.chunks(CHUNK).enumerate() {
        let lists = sampler.candidates(chunk, ci * CHUNK);
        for (case, cands) in chunk.iter().zip(&lists) {
            let rank = match cands.target_pos {
                Some(pos) => rank_of(&scorer.score_candidates(&case.prefix, &cands.items), pos),
                None => MISS,
            };
            acc.add(rank, case.prefix.len());
            acc.add_retrieved(cands.target_pos.is_some());
        }
        done += chunk.len();
        progress(done, cases.len());
        log.tick(done, &acc);
    }
    acc.finish(sampler.is_retriever())
}

/// Logs progress at about every 10% of the cases.
struct ProgressLog {
    what: String,
    total: usize,
    next: usize,
    start: std::time::Instant,
}

impl ProgressLog {
    fn new(scorer: &str, protocol: &str, total: usize) -> Self {
        Self {
            what: format!("{scorer} / {protocol}"),
            total,
            next: total / 10,
            start: std::time::Instant::now(),
        }
    }

    fn tick(&mut self, done: usize, acc: &MetricAccumulator) {
        if done >= self.next && done < self.total {
            let m = acc.finish(false);
            tracing::info!(
                "{}: {done}/{} cases, {:.1}s, P@20 so far {:.2}",
                self.what,
                self.total,
                self.start.elapsed().as_secs_f64(),
                m.p_at_20
            );
            self.next = done + self.total / 10;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::SamplerSpec;
    use crate::session::{ItemIdx, Session};

    /// Scores item `i` with a fixed vector.
    struct Fixed(Vec<f32>);
    impl Scorer for Fixed {
        fn name(&self) -> String {
            "fixed".into()
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

    fn case(prefix: &[u32], target: u32) -> TestCase {
        TestCase { prefix: prefix.iter().map(|&i| Event::view(i)).collect(), target }
    }

    #[test]
    fn full_ranking_by_hand() {
        // Ranking: 4 > 3 > 2 > 1 > 0.
        let s = Fixed(vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        let cases = vec![case(&[4], 3), case(&[4, 3], 2), case(&[1], 0)];
        // Ranks without masking: 1, 2, 4.
        for bs in [1, 2, 10] {
            let m = evaluate_full(&s, &cases, 5, bs, false);
            assert_eq!(m.cases, 3);
            assert!((m.mrr_at_20 - 100.0 * (0.5 + 1.0 / 3.0 + 0.2) / 3.0).abs() < 1e-9);
        }
        // With masking: case 1 → rank 0, case 2 → rank 0 (4 and 3 masked), case 3 → rank 3.
        let m = evaluate_full(&s, &cases, 5, 2, true);
        assert!((m.mrr_at_20 - 100.0 * (1.0 + 1.0 + 0.25) / 3.0).abs() < 1e-9);
        // The target is never masked even when it is in the prefix.
        let m = evaluate_full(&s, &[case(&[3, 4], 3)], 5, 1, true);
        assert!((m.hr_at_10 - 1.0).abs() < 1e-12 && (m.mrr_at_20 - 100.0).abs() < 1e-9);
    }

    #[test]
    fn upstream_order_on_uniform_lists_is_chance() {
        let train: Vec<Session> = Vec::new();
        let sampler = CandidateSampler::new(SamplerSpec::uniform_99(42), &train, 1000);
        let cases: Vec<TestCase> =
            (0..2000).map(|k| case(&[k % 1000], (k * 7 + 1) % 1000)).collect();
        let m = evaluate_rerank(&UpstreamOrder { n_items: 1000 }, &cases, &sampler);
        // The target sits uniformly among 100 positions: HR@10 ≈ 0.1.
        assert!((m.hr_at_10 - 0.1).abs() < 0.03, "{m}");
        assert_eq!(m.retriever_recall, None);
        // Deterministic.
        assert_eq!(m, evaluate_rerank(&UpstreamOrder { n_items: 1000 }, &cases, &sampler));
        // A perfect scorer puts the target first.
        struct Oracle(u32);
        impl Scorer for Oracle {
            fn name(&self) -> String {
                "oracle".into()
            }
            fn n_items(&self) -> usize {
                1000
            }
            fn score_batch(&self, _: &[&[Event]], out: &mut [f32]) {
                out.fill(0.0);
            }
            fn score_candidates(&self, _: &[Event], c: &[ItemIdx]) -> Vec<f32> {
                c.iter().map(|&i| if i == self.0 { 1.0 } else { 0.0 }).collect()
            }
        }
        let one = [case(&[5], 9)];
        let m = evaluate_rerank(&Oracle(9), &one, &sampler);
        assert_eq!(m.hr_at_10, 1.0);
    }

    #[test]
    fn retriever_misses_count() {
        let train = vec![
            Session { id: "a".into(), events: vec![Event::view(0), Event::view(1)] },
            Session { id: "c".into(), events: vec![Event::view(3), Event::view(4)] },
        ];
        let sampler = CandidateSampler::new(SamplerSpec::Retriever { depth: 1 }, &train, 5);
        let cases = vec![case(&[0], 1), case(&[0], 4)];
        let m = evaluate_rerank(&UpstreamOrder { n_items: 5 }, &cases, &sampler);
        assert_eq!(m.retriever_recall, Some(0.5));
        assert_eq!(m.hr_at_10, 0.5);
    }
}
