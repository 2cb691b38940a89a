//! Ranking metrics.
//!
//! Everything is computed from the 0-based **rank** of the target: the number of *other* items
//! scored at least as high as the target. Ties therefore count against the target — a scorer
//! that gives every item the same score gets the worst rank, not a lucky one — and a NaN score
//! counts as worse than any number (a NaN target is ranked last). This is the convention of the
//! SR-GNN / S3-Rec evaluation code up to tie handling, where theirs depends on the sort
//! implementation; ours cannot be gamed by constant scores.

use crate::session::ItemIdx;
use serde::{Deserialize, Serialize};

/// Rank meaning "the target was not among the candidates" (e.g. missed by a retriever).
pub const MISS: usize = usize::MAX;

/// 0-based rank of `scores[target]`: the number of other entries with a score `>=` it (NaN
/// entries count as worse; a NaN target is ranked below everything).
pub fn rank_of(scores: &[f32], target: usize) -> usize {
    let Some(&t) = scores.get(target) else { return MISS };
    if t.is_nan() {
        return scores.len().saturating_sub(1);
    }
    // The target itself is counted by `>=`; subtract it. A plain count vectorises well, which
    // matters for full ranking over ~43k items × 60k cases.
    scores.iter().filter(|&&s| s >= t).count() - 1
}

/// Same as [`rank_of`] with an item index.
pub fn rank_of_item(scores: &[f32], target: ItemIdx) -> usize {
    rank_of(scores, target as usize)
}

/// 1 if the target is in the top `k`.
pub fn hit_at(rank: usize, k: usize) -> f64 {
    if rank < k { 1.0 } else { 0.0 }
}

/// Reciprocal rank cut at `k`: `1/(rank+1)` inside the top `k`, else 0.
pub fn mrr_at(rank: usize, k: usize) -> f64 {
    if rank < k { 1.0 / (rank as f64 + 1.0) } else { 0.0 }
}

/// NDCG with one relevant item, cut at `k`: `1/log2(rank+2)` inside the top `k`, else 0.
pub fn ndcg_at(rank: usize, k: usize) -> f64 {
    if rank < k { 1.0 / (rank as f64 + 2.0).log2() } else { 0.0 }
}

/// Prefix-length buckets for the by-length breakdown (short sessions are where session
/// recommenders differ most).
pub const LENGTH_BUCKETS: [(usize, usize, &str); 8] = [
    (1, 1, "1"),
    (2, 2, "2"),
    (3, 3, "3"),
    (4, 4, "4"),
    (5, 5, "5"),
    (6, 10, "6-10"),
    (11, 20, "11-20"),
    (21, usize::MAX, ">20"),
];

fn bucket_of(len: usize) -> usize {
    LENGTH_BUCKETS.iter().position(|&(lo, hi, _)| len >= lo && len <= hi).unwrap_or(0)
}

/// Metrics of the cases whose prefix length falls in one bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketMetrics {
    /// `"1"`, …, `"6-10"`, `"11-20"`, `">20"`.
    pub bucket: String,
    pub cases: usize,
    /// Fractions.
    pub hr_at_20: f64,
    pub mrr_at_20: f64,
}

/// The numbers every protocol reports.
///
/// `p_at_20` and `mrr_at_20` are **percent**, as session-recommendation papers print them
/// (SR-GNN: "P@20 50.73"); the `hr_*`/`ndcg_*` fields are **fractions**, as sequential
/// recommendation papers print them (S3-Rec: "HR@10 0.0647"). `p_at_20 == 100 * hr_at_20`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankingMetrics {
    pub cases: usize,
    pub p_at_20: f64,
    pub mrr_at_20: f64,
    pub hr_at_10: f64,
    pub ndcg_at_10: f64,
    pub hr_at_20: f64,
    pub ndcg_at_20: f64,
    /// Breakdown by prefix length (empty buckets omitted).
    pub by_length: Vec<BucketMetrics>,
    /// Re-ranking over a retriever's candidates: share of cases whose target the retriever
    /// returned (an upper bound on every HR of that protocol).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retriever_recall: Option<f64>,
}

impl std::fmt::Display for RankingMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cases {} | P@20 {:.2} MRR@20 {:.2} | HR@10 {:.4} NDCG@10 {:.4} | HR@20 {:.4} NDCG@20 {:.4}",
            self.cases,
            self.p_at_20,
            self.mrr_at_20,
            self.hr_at_10,
            self.ndcg_at_10,
            self.hr_at_20,
            self.ndcg_at_20
        )?;
        if let Some(r) = self.retriever_recall {
            write!(f, " | retriever recall {r:.4}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    cases: usize,
    hr10: f64,
    ndcg10: f64,
    hr20: f64,
    mrr20: f64,
    ndcg20: f64,
}

impl Sums {
    fn add(&mut self, rank: usize) {
        self.cases += 1;
        self.hr10 += hit_at(rank, 10);
        self.ndcg10 += ndcg_at(rank, 10);
        self.hr20 += hit_at(rank, 20);
        self.mrr20 += mrr_at(rank, 20);
        self.ndcg20 += ndcg_at(rank, 20);
    }

    fn merge(&mut self, o: &Sums) {
        self.cases += o.cases;
        self.hr10 += o.hr10;
        self.ndcg10 += o.ndcg10;
        self.hr20 += o.hr20;
        self.mrr20 += o.mrr20;
        self.ndcg20 += o.ndcg20;
    }

    fn mean(&self, x: f64) -> f64 {
        if self.cases == 0 { 0.0 } else { x / self.cases as f64 }
    }
}

/// Sums ranks into [`RankingMetrics`]; mergeable, so evaluation can be split across threads.
#[derive(Debug, Clone, Default)]
pub struct MetricAccumulator {
    all: Sums,
    buckets: [Sums; LENGTH_BUCKETS.len()],
    retrieved: usize,
}

impl MetricAccumulator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Record one case: the target's 0-based rank ([`MISS`] when it was not ranked at all) and
    /// the length of the prefix it was predicted from.
    pub fn add(&mut self, rank: usize, prefix_len: usize) {
        self.all.add(rank);
        self.buckets[bucket_of(prefix_len)].add(rank);
    }

    /// Record whether a retriever returned the target (for [`RankingMetrics::retriever_recall`]).
    pub fn add_retrieved(&mut self, retrieved: bool) {
        self.retrieved += usize::from(retrieved);
    }

    pub fn merge(&mut self, other: &MetricAccumulator) {
        self.all.merge(&other.all);
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            a.merge(b);
        }
        self.retrieved += other.retrieved;
    }

    pub fn cases(&self) -> usize {
        self.all.cases
    }

    /// The metrics so far; `with_retriever` fills [`RankingMetrics::retriever_recall`].
    pub fn finish(&self, with_retriever: bool) -> RankingMetrics {
        let s = &self.all;
        RankingMetrics {
            cases: s.cases,
            p_at_20: 100.0 * s.mean(s.hr20),
            mrr_at_20: 100.0 * s.mean(s.mrr20),
            hr_at_10: s.mean(s.hr10),
            ndcg_at_10: s.mean(s.ndcg10),
            hr_at_20: s.mean(s.hr20),
            ndcg_at_20: s.mean(s.ndcg20),
            by_length: LENGTH_BUCKETS
                .iter()
                .zip(&self.buckets)
                .filter(|(_, b)| b.cases > 0)
                .map(|(&(_, _, name), b)| BucketMetrics {
                    bucket: name.to_string(),
                    cases: b.cases,
                    hr_at_20: b.mean(b.hr20),
                    mrr_at_20: b.mean(b.mrr20),
                })
                .collect(),
            retriever_recall: with_retriever.then(|| s.mean(self.retrieved as f64)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn ranks_with_ties_against_target() {
        let s = [0.5, 0.9, 0.5, 0.1];
        assert_eq!(rank_of(&s, 1), 0);
        // Item 0 ties with item 2: the tie counts against it.
        assert_eq!(rank_of(&s, 0), 2);
        assert_eq!(rank_of(&s, 2), 2);
        assert_eq!(rank_of(&s, 3), 3);
        // Constant scores: worst rank.
        assert_eq!(rank_of(&[1.0; 5], 3), 4);
        assert_eq!(rank_of(&s, 9), MISS);
    }

    #[test]
    fn nan_is_worse() {
        let s = [f32::NAN, 0.2, f32::NAN, 0.1];
        assert_eq!(rank_of(&s, 1), 0);
        assert_eq!(rank_of(&s, 3), 1);
        assert_eq!(rank_of(&s, 0), 3);
        let t = [f32::NEG_INFINITY, 0.0];
        assert_eq!(rank_of(&t, 0), 1);
    }

    #[test]
    fn metric_values() {
        assert_eq!(hit_at(0, 1), 1.0);
        assert_eq!(hit_at(9, 10), 1.0);
        assert_eq!(hit_at(10, 10), 0.0);
        assert_eq!(hit_at(MISS, 20), 0.0);
        assert!(close(mrr_at(0, 20), 1.0));
        assert!(close(mrr_at(3, 20), 0.25));
        assert_eq!(mrr_at(20, 20), 0.0);
        assert!(close(ndcg_at(0, 10), 1.0));
        // 1/log2(3) = 0.63092975...
        assert!(close(ndcg_at(1, 10), 0.630_929_753_571_457_4));
        // 1/log2(8) = 1/3
        assert!(close(ndcg_at(6, 10), 1.0 / 3.0));
        assert_eq!(ndcg_at(10, 10), 0.0);
    }

    #[test]
    fn accumulator_by_hand() {
        let mut a = MetricAccumulator::new();
        a.add(0, 1); // hit everywhere, rr 1, ndcg 1
        a.add(3, 2); // hit@10, rr 1/4, ndcg 1/log2(5)
        a.add(14, 7); // hit@20 only, rr 1/15, ndcg@20 1/log2(16) = 1/4
        a.add(MISS, 30);
        let mut b = MetricAccumulator::new();
        b.merge(&a);
        let m = b.finish(false);
        assert_eq!(m.cases, 4);
        assert!(close(m.hr_at_10, 0.5));
        assert!(close(m.hr_at_20, 0.75));
        assert!(close(m.p_at_20, 75.0));
        assert!(close(m.mrr_at_20, 100.0 * (1.0 + 0.25 + 1.0 / 15.0) / 4.0));
        assert!(close(m.ndcg_at_10, (1.0 + 1.0 / 5f64.log2()) / 4.0));
        assert!(close(m.ndcg_at_20, (1.0 + 1.0 / 5f64.log2() + 0.25) / 4.0));
        let names: Vec<&str> = m.by_length.iter().map(|b| b.bucket.as_str()).collect();
        assert_eq!(names, vec!["1", "2", "6-10", ">20"]);
        assert!(close(m.by_length[3].hr_at_20, 0.0));
        assert_eq!(m.retriever_recall, None);
        let mut c = MetricAccumulator::new();
        c.add(0, 1);
        c.add_retrieved(true);
        c.add(MISS, 1);
        c.add_retrieved(false);
        assert_eq!(c.finish(true).retriever_recall, Some(0.5));
    }

    #[test]
    fn empty_is_zero() {
        let m = MetricAccumulator::new().finish(false);
        assert_eq!(m.cases, 0);
        assert_eq!(m.p_at_20, 0.0);
        assert!(m.by_length.is_empty());
    }
}
