//! The `Reranker`: the one engine the server, the browser and the tests run.
//!
//! A re-rank call turns the session so far and the storefront's candidate list (in
//! upstream order) into the same ids re-ordered, each with its score and the session events
//! that pulled it up ("because you viewed …"). With [`Reranker::rerank_with`] the shop's
//! [`Rules`] then apply to the model's scores ([`crate::rules`]), the same function the
//! browser package and the evaluation call.

use std::collections::HashMap;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use sessionrank_model::{CandidateInput, SessionRankModel};

use crate::bundle::{BundleKind, CATEGORIES, ITEMS, MANIFEST, TOKENIZER, WEIGHTS};
use crate::features::{
    EncodedEvent, EncodedItem, FeatureEncoder, ItemContent, item_features, session_input,
};
use crate::rules::{self, ListItem, Rules};
use crate::{CoreError, ItemTokenizer, Manifest, ModelBundle, Result};

// The call's shapes, checks and weight helpers have modules of their own; re-exported here,
// where the server, the browser package and the trainer have always found them.
pub use crate::ranking::{Because, Candidate, RankedItem, Ranking, SessionEvent, upstream};
pub use crate::validate::{MAX_CANDIDATES, validate_candidates, validate_config, validate_vector};
pub use crate::weights::{load_weights, read_f32, weights_bytes};

/// The re-ranking engine: a model, its feature encoder and the device it runs on.
#[derive(Debug)]
pub struct Reranker {
    model: SessionRankModel,
    encoder: FeatureEncoder,
    device: Device,
    manifest: Manifest,
}

/// A prepared call: tensors still on the device, read back synchronously (native) or with
/// `into_data_async` (browser, where WebGPU forbids a blocking readback).
#[derive(Debug)]
pub struct PendingRanking {
    /// `[1, n_candidates]` scores.
    pub scores: Tensor<2>,
    /// `[n_rows, d]` local item table (rows: padding, then session + candidate items).
    pub table: Tensor<2>,
    candidates: Vec<(String, usize)>,
    candidate_rows: Vec<usize>,
    event_rows: Vec<(usize, String)>,
}

impl Reranker {
    /// Build the engine from a verified bundle.
    pub fn from_bundle(bundle: &ModelBundle, device: &Device) -> Result<Self> {
        let manifest = bundle.manifest.clone();
        let config = &manifest.config;
        validate_config(config)?;
        let encoder = match manifest.kind {
            BundleKind::Full => {
                let tokenizer = ItemTokenizer::from_json(bundle.file(TOKENIZER)?)?;
                let items = bundle.items()?;
                if items.items.len() != config.n_items {
                    return Err(CoreError::InvalidFile {
                        file: ITEMS.into(),
                        message: format!(
                            "{} items, the config says {}",
                            items.items.len(),
                            config.n_items
                        ),
                    });
                }
                FeatureEncoder::from_catalog(
                    &items.catalog(),
                    tokenizer,
                    manifest.features.max_tokens,
                    config.max_len,
                    config.max_candidates,
                )?
            }
            BundleKind::Browser => {
                if config.n_items != 0 || config.vocab_size > 1 {
                    return Err(CoreError::InvalidFile {
                        file: MANIFEST.into(),
                        message:
                            "a browser bundle has no item or word tables (n_items 0, vocab_size 1)"
                                .into(),
                    });
                }
                FeatureEncoder::for_browser(
                    bundle.categories()?,
                    manifest.features.max_tokens,
                    config.max_len,
                    config.max_candidates,
                )
            }
        };
        if encoder.n_categories() > config.n_categories {
            let file = if manifest.kind == BundleKind::Browser { CATEGORIES } else { ITEMS };
            return Err(CoreError::InvalidFile {
                file: file.into(),
                message: "more categories than the model has".into(),
            });
        }
        let model = load_weights(config.init(device), bundle.file(WEIGHTS)?)?;
        Ok(Self { model: model.valid(), encoder, device: device.clone(), manifest })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn encoder(&self) -> &FeatureEncoder {
        &self.encoder
    }

    pub fn model(&self) -> &SessionRankModel {
        &self.model
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Re-rank `candidates` (upstream order) for the session so far: the model's order
    /// (candidates marked unavailable hidden, the default rules).
    pub fn rerank(&self, session: &[SessionEvent], candidates: &[Candidate]) -> Result<Ranking> {
        self.rerank_with(session, candidates, &Rules::default())
    }

    /// Re-rank under the shop's `rules`. Without a session there are no model scores and the
    /// rules apply to the upstream order (diversity then uses the vectors the candidates carry).
    pub fn rerank_with(
        &self,
        session: &[SessionEvent],
        candidates: &[Candidate],
        rules: &Rules,
    ) -> Result<Ranking> {
        rules.validate()?;
        match self.prepare(session, candidates)? {
            Prepared::Upstream(r) => upstream_with(r, rules, &self.rule_items(candidates)),
            Prepared::Pending(p) => {
                let scores = read_f32(p.scores.clone())?;
                let table = read_f32(p.table.clone())?;
                p.finish_with(&scores, &table, self.model_dim(), rules, self.rule_items(candidates))
            }
        }
    }

    /// What the rules know of each candidate: id, category (its content's, else the known
    /// item's), availability and the vector it carries (the model's own replaces it once
    /// scored, see [`PendingRanking::finish_with`]).
    pub fn rule_items<'a>(&'a self, candidates: &'a [Candidate]) -> Vec<ListItem<'a>> {
        candidates
            .iter()
            .map(|c| ListItem {
                id: &c.item_id,
                category: self.encoder.category_of(&c.item_id, c.content.as_ref()),
                available: c.available,
                vector: c.vector.as_deref(),
            })
            .collect()
    }

    pub fn model_dim(&self) -> usize {
        self.manifest.config.d_model
    }

    /// Item vectors of the full model's item encoder (native: the server ships them with a
    /// candidate page so that browser bundles can score it). Known ids use the bundle's item;
    /// others their `content` (none: the "unknown item" vector).
    pub fn item_vectors(&self, items: &[(&str, Option<&ItemContent>)]) -> Result<Vec<Vec<f32>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut encoded = Vec::with_capacity(items.len());
        for (i, (id, content)) in items.iter().enumerate() {
            encoded.push(
                self.encoder
                    .encode_item(id, *content)
                    .map_err(|e| CoreError::input(format!("items[{i}]"), e.to_string()))?,
            );
        }
        let table = read_f32(self.model.item_vectors(item_features(
            encoded.iter(),
            self.encoder.max_tokens,
            &self.device,
        )))?;
        let d = self.model_dim();
        // Row 0 is padding.
        Ok(table.chunks_exact(d).skip(1).map(<[f32]>::to_vec).collect())
    }

    /// Validate the inputs and run the model, leaving the results on the device.
    pub fn prepare(&self, session: &[SessionEvent], candidates: &[Candidate]) -> Result<Prepared> {
        validate_candidates(candidates)?;
        let dim = self.model_dim();
        // Every item reference of the call, session first: (id, content, vector).
        // Field names are only formatted for an error: this runs on every click.
        let field = |i: usize| {
            if i < session.len() {
                format!("session[{i}]")
            } else {
                format!("candidates[{}]", i - session.len())
            }
        };
        let refs: Vec<ItemRef<'_>> = session
            .iter()
            .map(|e| (e.item_id.as_str(), e.content.as_ref(), e.vector.as_deref()))
            .chain(
                candidates
                    .iter()
                    .map(|c| (c.item_id.as_str(), c.content.as_ref(), c.vector.as_deref())),
            )
            .collect();
        // Vectors given anywhere in the call, checked, first one per id wins.
        let mut given: HashMap<&str, &[f32]> = HashMap::new();
        for (i, &(id, _, vector)) in refs.iter().enumerate() {
            if let Some(v) = vector {
                validate_vector(v, dim, || format!("{}.vector", field(i)))?;
                given.entry(id).or_insert(v);
            }
        }
        if session.is_empty() {
            return Ok(Prepared::Upstream(upstream(candidates, "the session has no events yet")));
        }
        // Local item table: row 0 padding, then the items the model encodes here, then the
        // items whose vectors were given. Rows are numbered once both lists are known.
        let mut slots: HashMap<&str, Slot> = HashMap::new();
        let mut items: Vec<EncodedItem> = Vec::new();
        let mut supplied: Vec<f32> = Vec::new();
        let mut ref_slots = Vec::with_capacity(refs.len());
        for (i, &(id, content, _)) in refs.iter().enumerate() {
            let slot = match slots.get(id) {
                Some(&s) => s,
                None => {
                    let slot = if let Some(v) = given.get(id) {
                        supplied.extend_from_slice(v);
                        Slot::Given(supplied.len() / dim - 1)
                    } else {
                        let enc = self
                            .encoder
                            .encode_item(id, content)
                            .map_err(|e| CoreError::input(field(i), e.to_string()))?;
                        items.push(enc);
                        Slot::Encoded(items.len() - 1)
                    };
                    slots.insert(id, slot);
                    slot
                }
            };
            ref_slots.push(slot);
        }
        let candidate_slots = ref_slots.split_off(session.len());
        let event_slots = ref_slots;
        let encoded = items.len();
        let row = |s: Slot| match s {
            Slot::Encoded(i) => 1 + i,
            Slot::Given(j) => 1 + encoded + j,
        };
        let mut events = Vec::with_capacity(session.len());
        let mut event_rows = Vec::with_capacity(session.len());
        for (e, &s) in session.iter().zip(&event_slots) {
            events.push(EncodedEvent { row: row(s) as u32, kind: e.kind, timestamp: e.timestamp });
            event_rows.push((row(s), e.item_id.clone()));
        }
        let candidate_rows: Vec<usize> = candidate_slots.iter().map(|&s| row(s)).collect();
        let d = &self.device;
        let mut table =
            self.model.item_vectors(item_features(items.iter(), self.encoder.max_tokens, d));
        if !supplied.is_empty() {
            let n = supplied.len() / dim;
            let given = Tensor::<2>::from_data(TensorData::new(supplied, [n, dim]), d);
            table = Tensor::cat(vec![table, given], 0);
        }
        let input = session_input(&[&events], self.encoder.max_len, d);
        let n = candidates.len();
        let max_rank = self.manifest.config.max_candidates.saturating_sub(1) as i64;
        let cand = CandidateInput {
            items: Tensor::<2, Int>::from_data(
                TensorData::new(
                    candidate_rows.iter().map(|&r| r as i64).collect::<Vec<_>>(),
                    [1, n],
                ),
                d,
            ),
            ranks: Tensor::<2, Int>::from_data(
                TensorData::new((0..n as i64).map(|r| r.min(max_rank)).collect::<Vec<_>>(), [1, n]),
                d,
            ),
        };
        let scores = self.model.forward_rerank(table.clone(), &input, &cand);
        // Keep the last `max_len` events only for explanations too: older ones did not count.
        let keep = event_rows.len().saturating_sub(self.encoder.max_len);
        Ok(Prepared::Pending(Box::new(PendingRanking {
            scores,
            table,
            candidates: candidates
                .iter()
                .enumerate()
                .map(|(i, c)| (c.item_id.clone(), i))
                .collect(),
            candidate_rows,
            event_rows: event_rows.split_off(keep),
        })))
    }
}

/// One item reference of a call: id, content, given vector.
type ItemRef<'a> = (&'a str, Option<&'a ItemContent>, Option<&'a [f32]>);

/// Where an item's vector comes from in one call: encoded by the model here, or given.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Encoded(usize),
    Given(usize),
}

/// Either an answer already (nothing to compute) or device work to read back.
#[derive(Debug)]
pub enum Prepared {
    Upstream(Ranking),
    Pending(Box<PendingRanking>),
}

/// Rules over a ranking that kept the upstream order (no model scores).
pub fn upstream_with(mut r: Ranking, rules: &Rules, list: &[ListItem<'_>]) -> Result<Ranking> {
    if rules.is_neutral() && list.iter().all(|c| c.available) {
        return Ok(r);
    }
    let (items, hidden) = rules::apply(rules, std::mem::take(&mut r.items), list, None)?;
    Ok(Ranking { items, hidden, ..r })
}

impl PendingRanking {
    /// Turn read-back scores and item table into the ranking (the model's order).
    pub fn finish(&self, scores: &[f32], table: &[f32], d: usize) -> Result<Ranking> {
        let mut items = self.ranked(scores, table, d)?;
        sort_by_score(&mut items);
        Ok(Ranking { items, personalised: true, reason: None, hidden: Vec::new() })
    }

    /// [`PendingRanking::finish`] under the shop's `rules`; `list` is
    /// [`Reranker::rule_items`] of the call's candidates. Diversity uses the item vectors the
    /// model scored with (the table's rows).
    pub fn finish_with<'a>(
        &self,
        scores: &[f32],
        table: &'a [f32],
        d: usize,
        rules: &Rules,
        mut list: Vec<ListItem<'a>>,
    ) -> Result<Ranking> {
        let mut items = self.ranked(scores, table, d)?;
        if rules.is_neutral() && list.iter().all(|c| c.available) {
            sort_by_score(&mut items);
            return Ok(Ranking { items, personalised: true, reason: None, hidden: Vec::new() });
        }
        if list.len() != items.len() {
            return Err(CoreError::input("candidates", "not the candidates of this call"));
        }
        for (item, &row) in list.iter_mut().zip(&self.candidate_rows) {
            item.vector = table.get(row * d..(row + 1) * d);
        }
        let (items, hidden) = rules::apply(rules, items, &list, Some(scores))?;
        Ok(Ranking { items, personalised: true, reason: None, hidden })
    }

    /// The candidates in upstream order with their scores and explanations.
    fn ranked(&self, scores: &[f32], table: &[f32], d: usize) -> Result<Vec<RankedItem>> {
        if scores.len() != self.candidates.len() || scores.iter().any(|s| !s.is_finite()) {
            return Err(CoreError::Device("model produced no finite scores".into()));
        }
        let vec = |row: usize| table.get(row * d..(row + 1) * d).unwrap_or(&[]);
        let mut distinct: Vec<(usize, &str)> = Vec::new();
        for (row, id) in &self.event_rows {
            if !distinct.iter().any(|(r, _)| r == row) {
                distinct.push((*row, id));
            }
        }
        let items: Vec<RankedItem> = self
            .candidates
            .iter()
            .zip(&self.candidate_rows)
            .zip(scores)
            .map(|(((id, rank), &crow), &score)| {
                let cv = vec(crow);
                let mut because: Vec<Because> = distinct
                    .iter()
                    .filter(|(r, _)| *r != crow)
                    .map(|(r, eid)| Because { item_id: eid.to_string(), weight: dot(cv, vec(*r)) })
                    .filter(|b| b.weight > 0.0)
                    .collect();
                because.sort_by(|a, b| b.weight.total_cmp(&a.weight));
                because.truncate(2);
                RankedItem {
                    item_id: id.clone(),
                    score,
                    upstream_rank: *rank,
                    because,
                    effects: Default::default(),
                }
            })
            .collect();
        Ok(items)
    }
}

/// The model's order. Stable: equal scores keep their upstream order.
fn sort_by_score(items: &mut [RankedItem]) {
    items.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.upstream_rank.cmp(&b.upstream_rank)));
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
