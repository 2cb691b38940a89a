//! Non-neural baselines: popularity, item-kNN and session-kNN.
//!
//! They exist to put the model's numbers in context (a neural session recommender that does not
//! clearly beat session-kNN is not worth its cost — Ludewig & Jannach, 2018) and to serve as the
//! retriever of the re-ranking protocol. All are fitted from training sessions alone and
//! implement [`Scorer`] for full ranking; they score rows in parallel and reuse per-thread
//! scratch buffers, so all 60,858 Diginetica test cases rank over 43,097 items in well under a
//! minute on two cores.
//!
//! Every baseline adds a tiny popularity prior (`1e-6 · count / max_count`) so that items its
//! main signal cannot tell apart — most of the catalog, for a short prefix — are ordered by
//! popularity rather than left tied (ties count against the target, see [`crate::metrics`]).

use crate::par::for_each_row;
use crate::scorer::Scorer;
use crate::session::{Event, ItemIdx, Session};

/// Weight of the popularity tie-break relative to a similarity of 1.
pub const PRIOR_WEIGHT: f32 = 1e-6;

/// Training events per item (all event kinds; items `>= n_items` ignored).
pub fn item_counts(train: &[Session], n_items: usize) -> Vec<u32> {
    let mut counts = vec![0u32; n_items];
    for e in train.iter().flat_map(|s| s.events.iter()) {
        if let Some(c) = counts.get_mut(e.item as usize) {
            *c = c.saturating_add(1);
        }
    }
    counts
}

fn prior(counts: &[u32], weight: f32) -> Vec<f32> {
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f32;
    counts.iter().map(|&c| weight * c as f32 / max).collect()
}

/// Distinct items of each session (sorted), as a compressed row list; sessions keep their
/// position so a larger index means a later session.
struct SessionSets {
    offsets: Vec<usize>,
    items: Vec<ItemIdx>,
}

impl SessionSets {
    fn new(train: &[Session], n_items: usize) -> Self {
        let mut offsets = Vec::with_capacity(train.len() + 1);
        let mut items = Vec::new();
        offsets.push(0);
        let mut buf = Vec::new();
        for s in train {
            buf.clear();
            buf.extend(s.events.iter().map(|e| e.item).filter(|&i| (i as usize) < n_items));
            buf.sort_unstable();
            buf.dedup();
            items.extend_from_slice(&buf);
            offsets.push(items.len());
        }
        Self { offsets, items }
    }

    fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    fn get(&self, s: usize) -> &[ItemIdx] {
        &self.items[self.offsets[s]..self.offsets[s + 1]]
    }

    /// Item → sessions containing it, ascending (so the most recent are at the end).
    fn inverted(&self, n_items: usize) -> (Vec<usize>, Vec<u32>) {
        let mut offsets = vec![0usize; n_items + 1];
        for &i in &self.items {
            offsets[i as usize + 1] += 1;
        }
        for i in 0..n_items {
            offsets[i + 1] += offsets[i];
        }
        let mut fill = offsets.clone();
        let mut sessions = vec![0u32; self.items.len()];
        for s in 0..self.len() {
            for &i in self.get(s) {
                sessions[fill[i as usize]] = s as u32;
                fill[i as usize] += 1;
            }
        }
        (offsets, sessions)
    }
}

// ---------------------------------------------------------------------------------------------

/// Most popular items first, whatever the prefix.
#[derive(Debug, Clone)]
pub struct Popularity {
    counts: Vec<u32>,
    scores: Vec<f32>,
}

impl Popularity {
    pub fn fit(train: &[Session], n_items: usize) -> Self {
        let counts = item_counts(train, n_items);
        let scores = counts.iter().map(|&c| c as f32).collect();
        Self { counts, scores }
    }

    /// Training events per item.
    pub fn counts(&self) -> &[u32] {
        &self.counts
    }
}

impl Scorer for Popularity {
    fn name(&self) -> String {
        "popularity".into()
    }

    fn n_items(&self) -> usize {
        self.scores.len()
    }

    fn score_batch(&self, prefixes: &[&[Event]], out: &mut [f32]) {
        for row in out.chunks_mut(self.scores.len().max(1)).take(prefixes.len()) {
            row.copy_from_slice(&self.scores);
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// Item-to-item co-occurrence within sessions, cosine-normalised:
/// `sim(i, j) = co(i, j) / sqrt(cnt(i) · cnt(j))`, where `co` counts sessions containing both
/// and `cnt` sessions containing one. A prefix scores item `j` by
/// `Σ_d w_d · sim(last_d, j)` over its last up-to-3 *distinct* items (`d = 0` the most recent,
/// `w_d = 1/(d+1)`): the latest click says most about the next one, the earlier ones
/// disambiguate. Items never co-occur with themselves.
#[derive(Debug, Clone)]
pub struct ItemKnn {
    offsets: Vec<usize>,
    neighbours: Vec<(ItemIdx, f32)>,
    prior: Vec<f32>,
}

impl ItemKnn {
    /// Recent distinct items used for a prefix.
    pub const HISTORY: usize = 3;

    pub fn fit(train: &[Session], n_items: usize) -> Self {
        let sets = SessionSets::new(train, n_items);
        let (inv_off, inv) = sets.inverted(n_items);
        let cnt: Vec<f32> = (0..n_items).map(|i| (inv_off[i + 1] - inv_off[i]) as f32).collect();
        let mut offsets = Vec::with_capacity(n_items + 1);
        offsets.push(0);
        let mut neighbours = Vec::new();
        let mut co = vec![0u32; n_items];
        let mut touched: Vec<ItemIdx> = Vec::new();
        for i in 0..n_items {
            for &s in &inv[inv_off[i]..inv_off[i + 1]] {
                for &j in sets.get(s as usize) {
                    if j as usize != i {
                        if co[j as usize] == 0 {
                            touched.push(j);
                        }
                        co[j as usize] += 1;
                    }
                }
            }
            touched.sort_unstable();
            for &j in &touched {
                let sim = co[j as usize] as f32 / (cnt[i] * cnt[j as usize]).sqrt();
                neighbours.push((j, sim));
                co[j as usize] = 0;
            }
            touched.clear();
            offsets.push(neighbours.len());
        }
        let counts = item_counts(train, n_items);
        Self { offsets, neighbours, prior: prior(&counts, PRIOR_WEIGHT) }
    }

    /// `(neighbour, similarity)` of an item, by neighbour index.
    pub fn neighbours(&self, item: ItemIdx) -> &[(ItemIdx, f32)] {
        let i = item as usize;
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&a), Some(&b)) => &self.neighbours[a..b],
            _ => &[],
        }
    }

    /// Scores of one prefix into `row` (length `n_items`).
    pub fn score_into(&self, prefix: &[Event], row: &mut [f32]) {
        row.copy_from_slice(&self.prior);
        let mut used = [ItemIdx::MAX; Self::HISTORY];
        let mut d = 0;
        for e in prefix.iter().rev() {
            if d == Self::HISTORY {
                break;
            }
            if used[..d].contains(&e.item) {
                continue;
            }
            used[d] = e.item;
            let w = 1.0 / (d as f32 + 1.0);
            for &(j, sim) in self.neighbours(e.item) {
                row[j as usize] += w * sim;
            }
            d += 1;
        }
    }
}

impl Scorer for ItemKnn {
    fn name(&self) -> String {
        "item-knn".into()
    }

    fn n_items(&self) -> usize {
        self.prior.len()
    }

    fn score_batch(&self, prefixes: &[&[Event]], out: &mut [f32]) {
        for_each_row(prefixes, out, self.prior.len(), || (), |_, p, row| self.score_into(p, row));
    }
}

// ---------------------------------------------------------------------------------------------

/// Session-kNN (SKNN, Jannach & Ludewig 2017): the training sessions most similar to the prefix
/// vote for their items.
///
/// Candidates are the [`SessionKnn::sample`] most recent training sessions sharing at least one
/// item with the prefix (found through an item → sessions index; "recent" = later in the
/// training list, which every importer keeps chronological). Similarity is the cosine of the
/// item sets, `|A ∩ B| / sqrt(|A| · |B|)`; the [`SessionKnn::k`] most similar vote for each of
/// their items with their similarity.
#[derive(Debug, Clone)]
pub struct SessionKnn {
    sets_offsets: Vec<usize>,
    sets_items: Vec<ItemIdx>,
    inv_offsets: Vec<usize>,
    inv_sessions: Vec<u32>,
    prior: Vec<f32>,
    /// Neighbours that vote.
    pub k: usize,
    /// Most recent candidate sessions considered.
    pub sample: usize,
}

/// Reusable per-thread buffers of [`SessionKnn`].
struct SknnScratch {
    overlap: Vec<u32>,
    touched: Vec<u32>,
    prefix: Vec<ItemIdx>,
    cands: Vec<(u32, f32)>,
}

impl SessionKnn {
    pub const DEFAULT_K: usize = 100;
    pub const DEFAULT_SAMPLE: usize = 1000;

    pub fn fit(train: &[Session], n_items: usize) -> Self {
        Self::with_params(train, n_items, Self::DEFAULT_K, Self::DEFAULT_SAMPLE)
    }

    pub fn with_params(train: &[Session], n_items: usize, k: usize, sample: usize) -> Self {
        let sets = SessionSets::new(train, n_items);
        let (inv_offsets, inv_sessions) = sets.inverted(n_items);
        let counts = item_counts(train, n_items);
        Self {
            sets_offsets: sets.offsets,
            sets_items: sets.items,
            inv_offsets,
            inv_sessions,
            prior: prior(&counts, PRIOR_WEIGHT),
            k: k.max(1),
            sample: sample.max(1),
        }
    }

    fn n_sessions(&self) -> usize {
        self.sets_offsets.len() - 1
    }

    fn set(&self, s: usize) -> &[ItemIdx] {
        &self.sets_items[self.sets_offsets[s]..self.sets_offsets[s + 1]]
    }

    fn scratch(&self) -> SknnScratch {
        SknnScratch {
            overlap: vec![0; self.n_sessions()],
            touched: Vec::new(),
            prefix: Vec::new(),
            cands: Vec::new(),
        }
    }

    fn score_with(
        &self,
        sc: &mut SknnScratch,
        prefix: &[Event],
        exclude: Option<u32>,
        row: &mut [f32],
    ) {
        row.copy_from_slice(&self.prior);
        let n_items = self.prior.len();
        sc.prefix.clear();
        sc.prefix.extend(prefix.iter().map(|e| e.item).filter(|&i| (i as usize) < n_items));
        sc.prefix.sort_unstable();
        sc.prefix.dedup();
        if sc.prefix.is_empty() {
            return;
        }
        // Overlap counts. Only the last `sample` postings of each item can matter: a session
        // among the `sample` most recent of the union is among the `sample` most recent of every
        // item list it appears in, so its overlap is counted exactly.
        for &i in &sc.prefix {
            let list =
                &self.inv_sessions[self.inv_offsets[i as usize]..self.inv_offsets[i as usize + 1]];
            let from = list.len().saturating_sub(self.sample);
            for &s in &list[from..] {
                if Some(s) == exclude {
                    continue;
                }
                let o = &mut sc.overlap[s as usize];
                if *o == 0 {
                    sc.touched.push(s);
                }
                *o += 1;
            }
        }
        let t = sc.touched.len();
        let recent: &[u32] = if t > self.sample {
            sc.touched.select_nth_unstable(t - self.sample);
            &sc.touched[t - self.sample..]
        } else {
            &sc.touched
        };
        let a = sc.prefix.len() as f32;
        sc.cands.clear();
        for &s in recent {
            let b = self.set(s as usize).len() as f32;
            sc.cands.push((s, sc.overlap[s as usize] as f32 / (a * b).sqrt()));
        }
        for &s in &sc.touched {
            sc.overlap[s as usize] = 0;
        }
        sc.touched.clear();
        // Top-k by similarity, more recent first among equals (deterministic).
        let by_sim = |x: &(u32, f32), y: &(u32, f32)| y.1.total_cmp(&x.1).then(y.0.cmp(&x.0));
        if sc.cands.len() > self.k {
            sc.cands.select_nth_unstable_by(self.k - 1, by_sim);
            sc.cands.truncate(self.k);
        }
        for &(s, sim) in &sc.cands {
            for &j in self.set(s as usize) {
                row[j as usize] += sim;
            }
        }
    }
}

impl SessionKnn {
    /// The votes for `prefixes[k]` with training session `sessions[k]` left out of its
    /// neighbours (`None`: none left out), into `out` (row-major, one row per prefix).
    ///
    /// Leave-one-out is what makes kNN a fair *teacher* on training data: a prefix of a
    /// training session would otherwise find that very session among its neighbours, and
    /// the votes would name its next item.
    pub fn score_leaving_out(
        &self,
        prefixes: &[&[Event]],
        sessions: &[Option<u32>],
        out: &mut [f32],
    ) {
        let n = self.prior.len();
        let mut sc = self.scratch();
        for ((p, s), row) in prefixes.iter().zip(sessions).zip(out.chunks_mut(n)) {
            self.score_with(&mut sc, p, *s, row);
        }
    }
}

impl Scorer for SessionKnn {
    fn name(&self) -> String {
        format!("session-knn(k={},sample={})", self.k, self.sample)
    }

    fn n_items(&self) -> usize {
        self.prior.len()
    }

    fn score_batch(&self, prefixes: &[&[Event]], out: &mut [f32]) {
        for_each_row(
            prefixes,
            out,
            self.prior.len(),
            || self.scratch(),
            |sc, p, row| self.score_with(sc, p, None, row),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sess(items: &[u32]) -> Session {
        Session { id: String::new(), events: items.iter().map(|&i| Event::view(i)).collect() }
    }

    fn scores<S: Scorer>(s: &S, prefix: &[u32]) -> Vec<f32> {
        let p: Vec<Event> = prefix.iter().map(|&i| Event::view(i)).collect();
        let mut out = vec![0.0; s.n_items()];
        s.score_batch(&[&p], &mut out);
        out
    }

    #[test]
    fn popularity_counts() {
        let train = vec![sess(&[0, 1, 1]), sess(&[1, 2])];
        let p = Popularity::fit(&train, 4);
        assert_eq!(p.counts(), &[1, 3, 1, 0]);
        assert_eq!(scores(&p, &[3]), vec![1.0, 3.0, 1.0, 0.0]);
    }

    #[test]
    fn item_knn_cosine_by_hand() {
        // cnt: 0→2, 1→3, 2→1, 3→1; co(0,1)=2, co(0,2)=1, co(1,3)=1.
        let train = vec![sess(&[0, 1, 2]), sess(&[0, 1]), sess(&[1, 3])];
        let m = ItemKnn::fit(&train, 5);
        let n0: Vec<(u32, f32)> = m.neighbours(0).to_vec();
        assert_eq!(n0.len(), 2);
        assert_eq!(n0[0].0, 1);
        assert!((n0[0].1 - 2.0 / 6f32.sqrt()).abs() < 1e-6); // 2/sqrt(2*3)
        assert!((n0[1].1 - 1.0 / 2f32.sqrt()).abs() < 1e-6); // 1/sqrt(2*1)
        let s = scores(&m, &[3, 0]);
        // last = 0 (w 1): 1 → 2/sqrt(6), 2 → 1/sqrt(2); before = 3 (w 1/2): 1 → 0.5 · 1/sqrt(3)
        assert!((s[1] - (2.0 / 6f32.sqrt() + 0.5 / 3f32.sqrt())).abs() < 1e-4);
        assert!((s[2] - 1.0 / 2f32.sqrt()).abs() < 1e-4);
        assert!(s[4] == 0.0 && s[0] > 0.0 && s[0] < 1e-5);
    }

    #[test]
    fn session_knn_by_hand() {
        let train = vec![sess(&[0, 1]), sess(&[0, 2, 3]), sess(&[4, 5])];
        let m = SessionKnn::with_params(&train, 6, 10, 10);
        let s = scores(&m, &[0]);
        // sim(s0) = 1/sqrt(1*2), sim(s1) = 1/sqrt(1*3); s2 shares nothing.
        let (a, b) = (1.0 / 2f32.sqrt(), 1.0 / 3f32.sqrt());
        assert!((s[1] - a).abs() < 1e-4);
        assert!((s[2] - b).abs() < 1e-4);
        assert!((s[0] - (a + b)).abs() < 1e-4);
        assert!(s[4] < 1e-5);
        // k = 1 keeps only the most similar neighbour.
        let m1 = SessionKnn::with_params(&train, 6, 1, 10);
        let s1 = scores(&m1, &[0]);
        assert!(s1[2] < 1e-5 && s1[1] > 0.5);
        // sample = 1 keeps only the most recent candidate (s1).
        let m2 = SessionKnn::with_params(&train, 6, 10, 1);
        let s2 = scores(&m2, &[0]);
        assert!(s2[1] < 1e-5 && s2[2] > 0.5);
        // Batch of several prefixes in parallel equals one at a time.
        let p1: Vec<Event> = vec![Event::view(0)];
        let p2: Vec<Event> = vec![Event::view(4), Event::view(2)];
        let mut out = vec![0.0; 12];
        m.score_batch(&[&p1, &p2], &mut out);
        assert_eq!(&out[..6], &scores(&m, &[0])[..]);
        assert_eq!(&out[6..], &scores(&m, &[4, 2])[..]);
        // Leaving session 0 out: only s1 votes for prefix [0]; leaving none out is the scorer.
        let mut left = vec![0.0; 12];
        m.score_leaving_out(&[&p1, &p1], &[Some(0), None], &mut left);
        assert!(left[1] < 1e-5 && (left[2] - b).abs() < 1e-4 && (left[0] - b).abs() < 1e-4);
        assert_eq!(&left[6..], &out[..6]);
    }
}
