//! What the evaluation protocols rank with: the [`Scorer`] trait (the model, a baseline, a fixed
//! upstream order all implement it) and [`UpstreamOrder`], the re-ranking protocol's reference.
//!
//! A leaf module on purpose: the protocols ([`crate::eval`]), the candidate lists
//! ([`crate::sample`]) and the baselines ([`crate::baselines`]) all need the trait, and the
//! baselines are in turn the retriever of the candidate lists.

use crate::session::{Event, ItemIdx};

/// Anything that scores catalog items for a session prefix: the model, a baseline, a fixed
/// upstream order. Higher scores rank first.
pub trait Scorer {
    fn name(&self) -> String;

    /// Catalog size the scorer ranks over (length of one row of [`Scorer::score_batch`]).
    fn n_items(&self) -> usize;

    /// Scores for every catalog item for each prefix: `out.len() == prefixes.len() * n_items`,
    /// row-major.
    fn score_batch(&self, prefixes: &[&[Event]], out: &mut [f32]);

    /// Scores for a candidate list given in upstream order (index 0 = shown first). Default:
    /// gather from [`Scorer::score_batch`] (an id outside the catalog gets NaN, i.e. last).
    fn score_candidates(&self, prefix: &[Event], candidates: &[ItemIdx]) -> Vec<f32> {
        let mut row = vec![0.0f32; self.n_items()];
        self.score_batch(&[prefix], &mut row);
        candidates.iter().map(|&c| row.get(c as usize).copied().unwrap_or(f32::NAN)).collect()
    }
}

impl<T: Scorer + ?Sized> Scorer for &T {
    fn name(&self) -> String {
        (**self).name()
    }
    fn n_items(&self) -> usize {
        (**self).n_items()
    }
    fn score_batch(&self, prefixes: &[&[Event]], out: &mut [f32]) {
        (**self).score_batch(prefixes, out)
    }
    fn score_candidates(&self, prefix: &[Event], candidates: &[ItemIdx]) -> Vec<f32> {
        (**self).score_candidates(prefix, candidates)
    }
}

impl<T: Scorer + ?Sized> Scorer for Box<T> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn n_items(&self) -> usize {
        (**self).n_items()
    }
    fn score_batch(&self, prefixes: &[&[Event]], out: &mut [f32]) {
        (**self).score_batch(prefixes, out)
    }
    fn score_candidates(&self, prefix: &[Event], candidates: &[ItemIdx]) -> Vec<f32> {
        (**self).score_candidates(prefix, candidates)
    }
}

/// The order the upstream stage showed the candidates in, as a scorer: `score = -position`.
/// The reference point of the re-ranking protocol (a re-ranker must beat it to be worth
/// running). It knows nothing about the catalog, so its full-ranking rows are all zero (every
/// item tied, i.e. the worst rank).
#[derive(Debug, Clone, Copy)]
pub struct UpstreamOrder {
    pub n_items: usize,
}

impl Scorer for UpstreamOrder {
    fn name(&self) -> String {
        "upstream-order".into()
    }
    fn n_items(&self) -> usize {
        self.n_items
    }
    fn score_batch(&self, _prefixes: &[&[Event]], out: &mut [f32]) {
        out.fill(0.0);
    }
    fn score_candidates(&self, _prefix: &[Event], candidates: &[ItemIdx]) -> Vec<f32> {
        (0..candidates.len()).map(|p| -(p as f32)).collect()
    }
}
