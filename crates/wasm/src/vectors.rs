//! Item vectors the page has given, kept for the tab's lifetime.
//!
//! A browser bundle has no item table: items arrive as vectors with each candidate page
//! (`rerank([{itemId, vector}, …])`). The shopper then clicks one of those items and the page
//! calls `observe({itemId})` — without the vector, as any storefront would. This cache
//! remembers the vectors of listed items so that the event gets its vector attached, and so
//! a later `rerank` of the same items by bare id still scores them. The session stores each
//! event's vector with it (in `sessionStorage`), so a reload keeps scoring the same.
//!
//! Bounded: a shopper browsing for hours sees thousands of items; the oldest are dropped.

use std::collections::{HashMap, VecDeque};

use sessionrank_core::{Candidate, SessionEvent};

/// Items remembered at most (× d_model floats each: 4,096 × 64 × 4 B = 1 MB at d 64).
pub const CAPACITY: usize = 4096;

#[derive(Debug, Default)]
pub struct VectorCache {
    vectors: HashMap<String, Vec<f32>>,
    /// Insertion order, oldest first, for eviction.
    order: VecDeque<String>,
}

impl VectorCache {
    /// Remember the vectors candidates carry; give vector-less candidates a remembered one.
    /// Vectors are remembered as given: the engine rejects a malformed one in the same call,
    /// and a malformed one is never attached to an event (see [`Self::fill_event`]).
    pub fn learn_and_fill(&mut self, candidates: &mut [Candidate]) {
        for c in candidates.iter_mut() {
            match &c.vector {
                Some(v) => self.insert(&c.item_id, v),
                None => c.vector = self.vectors.get(&c.item_id).cloned(),
            }
        }
    }

    /// Attach the remembered vector to an event that has none — only a well-formed one
    /// (`dim` finite floats): a malformed vector a page once listed would otherwise sit in the
    /// session, be stored with it, and fail every later re-rank of the tab.
    pub fn fill_event(&self, event: &mut SessionEvent, dim: usize) {
        if event.vector.is_none() {
            event.vector = self
                .vectors
                .get(&event.item_id)
                .filter(|v| v.len() == dim && v.iter().all(|x| x.is_finite()))
                .cloned();
        }
    }

    fn insert(&mut self, id: &str, v: &[f32]) {
        // A page re-ranked after every click passes the same vectors again: nothing to copy.
        if self.vectors.get(id).is_some_and(|known| known.as_slice() == v) {
            return;
        }
        if self.vectors.insert(id.to_string(), v.to_vec()).is_none() {
            self.order.push_back(id.to_string());
        }
        while self.order.len() > CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.vectors.remove(&old);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }
}
