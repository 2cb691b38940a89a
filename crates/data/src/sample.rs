//! Candidate lists for the re-ranking protocols.
//!
//! A re-ranker only ever sees what an upstream stage shows it, so the re-ranking protocol
//! evaluates the scorer on a candidate list per case:
//! * [`SamplerSpec::Uniform`] — the target plus `negatives` items drawn uniformly (the S3-Rec /
//!   SASRec "1 + 99" protocol; the published Amazon Beauty numbers use it);
//! * [`SamplerSpec::Popularity`] — negatives drawn in proportion to training popularity (harder,
//!   closer to what a real retriever returns);
//! * [`SamplerSpec::Retriever`] — the top `depth` items of the item-kNN co-occurrence baseline;
//!   the target may be missing (then the case is a miss whatever the re-ranker does), and the
//!   retriever's recall is reported alongside.
//!
//! Sampled negatives are never the target, never repeat, and never an item of the prefix (S3-Rec
//! samples among items the user has not interacted with). The order of a list — the "upstream
//! order" — is the target inserted at a uniformly random position among the negatives for the
//! sampled protocols, and descending retriever score for the retriever. Every case draws from its
//! own RNG seeded by `(seed, case index)`, so the lists do not depend on batching or threads.

use crate::baselines::{ItemKnn, item_counts};
use crate::par::map_indices;
use crate::scorer::Scorer;
use crate::session::{ItemIdx, Session, TestCase};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Which candidate lists to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SamplerSpec {
    Uniform { negatives: usize, seed: u64 },
    Popularity { negatives: usize, seed: u64 },
    Retriever { depth: usize },
}

impl SamplerSpec {
    /// The published "1 positive + 99 uniform negatives" protocol.
    pub fn uniform_99(seed: u64) -> Self {
        Self::Uniform { negatives: 99, seed }
    }

    pub fn popularity_99(seed: u64) -> Self {
        Self::Popularity { negatives: 99, seed }
    }

    pub fn retriever_100() -> Self {
        Self::Retriever { depth: 100 }
    }

    /// Short label for reports: `uniform-99`, `popularity-99`, `retriever-100`.
    pub fn label(&self) -> String {
        match self {
            Self::Uniform { negatives, .. } => format!("uniform-{negatives}"),
            Self::Popularity { negatives, .. } => format!("popularity-{negatives}"),
            Self::Retriever { depth } => format!("retriever-{depth}"),
        }
    }
}

/// One case's candidate list in upstream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidates {
    pub items: Vec<ItemIdx>,
    /// Position of the target in `items`; `None` when the retriever missed it.
    pub target_pos: Option<usize>,
}

/// A [`SamplerSpec`] made ready against a training set.
#[derive(Debug, Clone)]
pub struct CandidateSampler {
    spec: SamplerSpec,
    n_items: usize,
    /// Popularity: items with a non-zero count and the running sum of their counts.
    pop_items: Vec<ItemIdx>,
    pop_cumulative: Vec<u64>,
    retriever: Option<ItemKnn>,
}

impl CandidateSampler {
    pub fn new(spec: SamplerSpec, train: &[Session], n_items: usize) -> Self {
        let mut pop_items = Vec::new();
        let mut pop_cumulative = Vec::new();
        let mut retriever = None;
        match spec {
            SamplerSpec::Popularity { .. } => {
                let mut total = 0u64;
                for (i, &c) in item_counts(train, n_items).iter().enumerate() {
                    if c > 0 {
                        total += u64::from(c);
                        pop_items.push(i as ItemIdx);
                        pop_cumulative.push(total);
                    }
                }
            }
            SamplerSpec::Retriever { .. } => retriever = Some(ItemKnn::fit(train, n_items)),
            SamplerSpec::Uniform { .. } => {}
        }
        Self { spec, n_items, pop_items, pop_cumulative, retriever }
    }

    pub fn spec(&self) -> SamplerSpec {
        self.spec
    }

    pub fn is_retriever(&self) -> bool {
        matches!(self.spec, SamplerSpec::Retriever { .. })
    }

    /// Candidate lists for `cases`, the first of which has index `first_index` in the full case
    /// list (the index seeds that case's RNG).
    pub fn candidates(&self, cases: &[TestCase], first_index: usize) -> Vec<Candidates> {
        match self.spec {
            SamplerSpec::Uniform { negatives, seed }
            | SamplerSpec::Popularity { negatives, seed } => cases
                .iter()
                .enumerate()
                .map(|(k, c)| self.sampled(c, negatives, case_seed(seed, first_index + k)))
                .collect(),
            SamplerSpec::Retriever { depth } => self.retrieved(cases, depth),
        }
    }

    fn sampled(&self, case: &TestCase, negatives: usize, seed: u64) -> Candidates {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut excluded: Vec<ItemIdx> = case.prefix.iter().map(|e| e.item).collect();
        excluded.push(case.target);
        excluded.sort_unstable();
        excluded.dedup();
        let blocked = |x: ItemIdx, chosen: &[ItemIdx]| {
            excluded.binary_search(&x).is_ok() || chosen.contains(&x)
        };
        let mut negs: Vec<ItemIdx> = Vec::with_capacity(negatives);
        let popularity = matches!(self.spec, SamplerSpec::Popularity { .. });
        let pool: usize = if popularity { self.pop_items.len() } else { self.n_items };
        // How many distinct admissible items exist at most; never loop for more.
        let excluded_in_pool = if popularity {
            excluded.iter().filter(|x| self.pop_items.binary_search(x).is_ok()).count()
        } else {
            excluded.iter().filter(|&&x| (x as usize) < self.n_items).count()
        };
        let available = pool - excluded_in_pool;
        let want = negatives.min(available);
        let total = self.pop_cumulative.last().copied().unwrap_or(0);
        // Rejection sampling; the attempt cap only matters for tiny catalogs, where a uniform
        // sweep over the remaining admissible items fills the list deterministically.
        let mut attempts = 0usize;
        while negs.len() < want && attempts < 50 * want + 100 {
            attempts += 1;
            let x = if popularity {
                if total == 0 {
                    break;
                }
                let r = rng.random_range(0..total);
                let k = self.pop_cumulative.partition_point(|&c| c <= r);
                match self.pop_items.get(k) {
                    Some(&x) => x,
                    None => continue,
                }
            } else {
                rng.random_range(0..self.n_items) as ItemIdx
            };
            if !blocked(x, &negs) {
                negs.push(x);
            }
        }
        if negs.len() < want {
            let mut rest: Vec<ItemIdx> = if popularity {
                self.pop_items.clone()
            } else {
                (0..self.n_items as ItemIdx).collect()
            };
            rest.retain(|&x| !blocked(x, &negs));
            rand::seq::SliceRandom::shuffle(&mut rest[..], &mut rng);
            let need = want - negs.len();
            negs.extend(rest.into_iter().take(need));
        }
        let pos = rng.random_range(0..=negs.len());
        negs.insert(pos, case.target);
        Candidates { items: negs, target_pos: Some(pos) }
    }

    fn retrieved(&self, cases: &[TestCase], depth: usize) -> Vec<Candidates> {
        let Some(knn) = &self.retriever else { return Vec::new() };
        let n = self.n_items;
        let mut out = vec![Candidates { items: Vec::new(), target_pos: None }; cases.len()];
        map_indices(&mut out, |k| {
            let case = &cases[k];
            let mut row = vec![0.0f32; n];
            knn.score_into(&case.prefix, &mut row);
            let mut idx: Vec<ItemIdx> = (0..n as ItemIdx).collect();
            let by_score = |a: &ItemIdx, b: &ItemIdx| {
                row[*b as usize].total_cmp(&row[*a as usize]).then(a.cmp(b))
            };
            let d = depth.min(n);
            if d == 0 {
                return Candidates { items: Vec::new(), target_pos: None };
            }
            if d < n {
                idx.select_nth_unstable_by(d - 1, by_score);
                idx.truncate(d);
            }
            idx.sort_unstable_by(by_score);
            let target_pos = idx.iter().position(|&i| i == case.target);
            Candidates { items: idx, target_pos }
        });
        out
    }

    /// The retriever's scorer, when this is the retriever protocol.
    pub fn retriever(&self) -> Option<&dyn Scorer> {
        self.retriever.as_ref().map(|r| r as &dyn Scorer)
    }
}

/// SplitMix64 of `(seed, index)`: independent, reproducible per-case streams.
fn case_seed(seed: u64, index: usize) -> u64 {
    let mut z = seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Event;

    fn case(prefix: &[u32], target: u32) -> TestCase {
        TestCase { prefix: prefix.iter().map(|&i| Event::view(i)).collect(), target }
    }

    fn train() -> Vec<Session> {
        (0..50u32)
            .map(|s| Session {
                id: s.to_string(),
                events: (0..4).map(|k| Event::view((s * 7 + k * 13) % 500)).collect(),
            })
            .collect()
    }

    fn check_invariants(c: &Candidates, tc: &TestCase, negatives: usize) {
        assert_eq!(c.items.len(), negatives + 1);
        let pos = c.target_pos.unwrap_or(usize::MAX);
        assert_eq!(c.items[pos], tc.target);
        let mut sorted = c.items.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), c.items.len(), "duplicates");
        for (k, &x) in c.items.iter().enumerate() {
            if k != pos {
                assert_ne!(x, tc.target);
                assert!(!tc.prefix.iter().any(|e| e.item == x), "prefix item sampled");
            }
        }
    }

    #[test]
    fn uniform_and_popularity_invariants() {
        let cases: Vec<TestCase> =
            (0..200).map(|k| case(&[k % 500, (k * 3) % 500], (k * 11) % 500)).collect();
        for spec in [SamplerSpec::uniform_99(7), SamplerSpec::popularity_99(7)] {
            let s = CandidateSampler::new(spec, &train(), 500);
            let a = s.candidates(&cases, 0);
            let mut positions = std::collections::HashSet::new();
            for (c, tc) in a.iter().zip(&cases) {
                check_invariants(c, tc, 99);
                positions.insert(c.target_pos);
            }
            // The target lands at many different positions.
            assert!(positions.len() > 50);
            // Deterministic, and independent of batching.
            let b1 = s.candidates(&cases[..120], 0);
            let b2 = s.candidates(&cases[120..], 120);
            assert_eq!(a[..120], b1[..]);
            assert_eq!(a[120..], b2[..]);
            // A different seed gives different lists.
            let other = match spec {
                SamplerSpec::Uniform { negatives, .. } => {
                    SamplerSpec::Uniform { negatives, seed: 8 }
                }
                SamplerSpec::Popularity { negatives, .. } => {
                    SamplerSpec::Popularity { negatives, seed: 8 }
                }
                r => r,
            };
            let c = CandidateSampler::new(other, &train(), 500).candidates(&cases, 0);
            assert_ne!(a, c);
        }
    }

    #[test]
    fn popularity_negatives_are_popular_items() {
        let s = CandidateSampler::new(SamplerSpec::popularity_99(1), &train(), 500);
        let counts = item_counts(&train(), 500);
        for c in s.candidates(&[case(&[1], 2)], 0) {
            for (k, &x) in c.items.iter().enumerate() {
                if Some(k) != c.target_pos {
                    assert!(counts[x as usize] > 0);
                }
            }
        }
    }

    #[test]
    fn tiny_catalog_takes_what_exists() {
        let s = CandidateSampler::new(SamplerSpec::uniform_99(3), &[], 6);
        let c = s.candidates(&[case(&[0, 1], 2)], 0);
        assert_eq!(c[0].items.len(), 4); // target + items 3, 4, 5
        check_invariants(&c[0], &case(&[0, 1], 2), 3);
    }

    #[test]
    fn retriever_orders_by_score_and_reports_misses() {
        let train = vec![
            Session { id: "a".into(), events: vec![Event::view(0), Event::view(1)] },
            Session {
                id: "b".into(),
                events: vec![Event::view(0), Event::view(1), Event::view(2)],
            },
            Session { id: "c".into(), events: vec![Event::view(3), Event::view(4)] },
        ];
        let s = CandidateSampler::new(SamplerSpec::Retriever { depth: 2 }, &train, 5);
        let c = s.candidates(&[case(&[0], 1), case(&[0], 4)], 0);
        assert_eq!(c[0].items, vec![1, 2]);
        assert_eq!(c[0].target_pos, Some(0));
        assert_eq!(c[1].target_pos, None);
    }
}
