//! The `Reranker`: the one engine the server, the browser and the tests run.
//!
//! A re-rank call turns the session so far and the storefront's candidate list (in
//! upstream order) into the same ids re-ordered, each with its score and the session events
//! that pulled it up ("because you viewed …"). With [`Reranker::rerank_with`] the shop's
//! [`Rules`] then apply to the model's scores ([`crate::rules`]), the same function the
//! browser package and the evaluation call.

use std::collections::HashMap;
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use sessionrank_model::{
    CandidateInput, EncoderCache, FusedScorer, FusedSessionEncoder, SessionRankModel,
    time_gap_bucket,
};

use crate::bundle::{BundleKind, CATEGORIES, ITEMS, MANIFEST, TOKENIZER, WEIGHTS};
use crate::features::{
    EncodedEvent, EncodedItem, FeatureEncoder, ItemContent, item_features, session_input,
};
use crate::rules::{self, ListItem, Rules};
use crate::similarity::dot;
use crate::{CoreError, ItemTokenizer, Manifest, ModelBundle, Result};

// The call's shapes, checks and weight helpers have modules of their own; re-exported here,
// where the server, the browser package and the trainer have always found them.
pub use crate::ranking::{Because, Candidate, RankedItem, Ranking, SessionEvent, upstream};
pub use crate::validate::{MAX_CANDIDATES, validate_candidates, validate_config, validate_vector};
pub use crate::weights::{load_weights, model_from_bytes, read_f32, read_f32_async, weights_bytes};

/// Largest `features.max_tokens` a manifest may ask for (the tokens an item input holds).
const MAX_FEATURE_TOKENS: usize = 4096;

/// The re-ranking engine: a model, its feature encoder and the device it runs on.
#[derive(Debug)]
pub struct Reranker {
    model: SessionRankModel,
    encoder: FeatureEncoder,
    device: Device,
    manifest: Manifest,
    /// On the CPU: the session encoder as plain loops, one event at a time
    /// ([`FusedSessionEncoder`]); `None` on a GPU (burn's modules run there).
    fused: Option<FusedSessionEncoder>,
    /// On the CPU, for a model both fused halves cover: a call's item table, session state
    /// and scores stay host slices, and burn's modules run only to encode an item that came
    /// without a vector (or a whole window that slid).
    host: Option<HostPath>,
}

/// What [`Reranker`]'s host path needs besides the fused encoder.
#[derive(Debug)]
struct HostPath {
    scorer: FusedScorer,
    /// The item encoder's padding row (row 0 of every table), computed once.
    padding: Vec<f32>,
}

/// A prepared call: scores and item table, still on the device (read back synchronously
/// natively, or with `into_data_async` in the browser, where WebGPU forbids a blocking
/// readback) or already on the host (the CPU's fused path).
#[derive(Debug)]
pub struct PendingRanking {
    output: Output,
    candidates: Vec<(String, usize)>,
    candidate_rows: Vec<usize>,
    event_rows: Vec<(usize, String)>,
}

/// `[1, n_candidates]` scores and the `[n_rows, d]` local item table (rows: padding, then
/// session + candidate items).
#[derive(Debug)]
enum Output {
    Device { scores: Box<Tensor<2>>, table: Box<Tensor<2>> },
    Host { scores: Vec<f32>, table: Vec<f32> },
}

/// A value a call computed: a tensor on the engine's device, or host floats (the CPU's fused
/// path), shared by the states kept between calls.
#[derive(Debug, Clone)]
enum Held {
    Device(Box<Tensor<2>>),
    Host(Arc<[f32]>),
}

impl Reranker {
    /// Build the engine from a verified bundle.
    pub fn from_bundle(bundle: &ModelBundle, device: &Device) -> Result<Self> {
        let manifest = bundle.manifest.clone();
        let config = &manifest.config;
        validate_config(config)?;
        // Item inputs are padded to this many tokens: a bound like the config's.
        if manifest.features.max_tokens > MAX_FEATURE_TOKENS {
            return Err(CoreError::InvalidFile {
                file: MANIFEST.into(),
                message: format!("features.max_tokens is above {MAX_FEATURE_TOKENS}"),
            });
        }
        let encoder = match manifest.kind {
            BundleKind::Full => {
                let tokenizer = ItemTokenizer::from_json(bundle.file(TOKENIZER)?)?;
                // A word id past the token table would index outside it.
                if config.use_content && tokenizer.vocab_size() > config.vocab_size.max(1) {
                    return Err(CoreError::InvalidFile {
                        file: TOKENIZER.into(),
                        message: format!(
                            "{} words, the config's token table has {}",
                            tokenizer.vocab_size(),
                            config.vocab_size
                        ),
                    });
                }
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
        let model = model_from_bytes(config, bundle.file(WEIGHTS)?, device)?.valid();
        // The fused encoder reads the weights synchronously: the CPU only (a WebGPU device
        // allows no blocking readback, and a GPU runs burn's batched modules well).
        let fused = (*device == Device::flex())
            .then(|| FusedSessionEncoder::new(&model.session).ok())
            .flatten();
        // Only beside the fused encoder (the CPU): the scorer's weights, too, are read back
        // synchronously, which a WebGPU device forbids.
        let scorer = fused.as_ref().and_then(|_| FusedScorer::new(&model).ok());
        let host = match scorer {
            Some(scorer) => {
                // Plain loops, not the item encoder's tensor operations (see `padding_vector`).
                let padding = match model.items.padding_vector() {
                    Ok(row) => row,
                    Err(_) => {
                        let none = std::iter::empty::<&EncodedItem>();
                        let features = item_features(none, manifest.features.max_tokens, device);
                        read_f32(model.item_vectors(features))?
                    }
                };
                Some(HostPath { scorer, padding })
            }
            _ => None,
        };
        Ok(Self { model, encoder, device: device.clone(), manifest, fused, host })
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
                let (scores, table) = p.read()?;
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
        Ok(self.prepare_cached(session, candidates, None)?.0)
    }

    /// [`Reranker::prepare`], reusing `cached` — the session half of an earlier call — when it
    /// was computed for the same events (ids, kinds, times, vectors) in the model's window:
    /// the session encoder then does not run again, and only the candidates are scored. The
    /// state to keep for the next call comes back with the result (`None` when the session is
    /// empty). The answer is the one `prepare` gives, within floating-point order.
    pub fn prepare_cached(
        &self,
        session: &[SessionEvent],
        candidates: &[Candidate],
        cached: Option<&SessionState>,
    ) -> Result<(Prepared, Option<SessionState>)> {
        validate_candidates(candidates)?;
        let dim = self.model_dim();
        // Only the window reaches the model (and the explanations): older events are not
        // converted, checked or encoded on every click.
        let skip = session.len().saturating_sub(self.encoder.max_len);
        let window = &session[skip..];
        for (i, e) in window.iter().enumerate() {
            if let Some(v) = &e.vector {
                validate_vector(v, dim, || format!("session[{}].vector", skip + i))?;
            }
        }
        for (i, c) in candidates.iter().enumerate() {
            if let Some(v) = &c.vector {
                validate_vector(v, dim, || format!("candidates[{i}].vector"))?;
            }
        }
        if window.is_empty() {
            let r = upstream(candidates, "the session has no events yet");
            return Ok((Prepared::Upstream(r), None));
        }
        let state = match cached {
            Some(s) if s.reusable_for(window) => s.clone(),
            previous => self.session_state(window, skip, candidates, previous)?,
        };
        // The candidates' rows: a session item keeps its row (its vector as the session gave
        // it), the others are encoded here or taken as given, after the session's rows.
        // (Ids are distinct: `validate_candidates` checked.)
        let mut items: Vec<EncodedItem> = Vec::new();
        let mut supplied: Vec<&[f32]> = Vec::new();
        let mut slots = Vec::with_capacity(candidates.len());
        for (i, c) in candidates.iter().enumerate() {
            let slot = if let Some(&row) = state.0.rows.get(c.item_id.as_str()) {
                Slot::Row(row)
            } else {
                match c.vector.as_deref() {
                    Some(v) => {
                        supplied.push(v);
                        Slot::Given(supplied.len() - 1)
                    }
                    None => {
                        let enc =
                            self.encoder.encode_item(&c.item_id, c.content.as_ref()).map_err(
                                |e| CoreError::input(format!("candidates[{i}]"), e.to_string()),
                            )?;
                        items.push(enc);
                        Slot::Encoded(items.len() - 1)
                    }
                }
            };
            slots.push(slot);
        }
        // Number the new rows: encoded first, then given, after the session's table.
        let base = state.0.n_rows;
        let encoded = items.len();
        let row_of = |s: Slot| match s {
            Slot::Row(r) => r,
            Slot::Encoded(i) => base + i,
            Slot::Given(j) => base + encoded + j,
        };
        let candidate_rows: Vec<usize> = slots.iter().map(|&s| row_of(s)).collect();
        let output = match (&self.host, &state.0.h, &state.0.table) {
            (Some(host), Held::Host(h), Held::Host(rows)) => {
                let mut table = Vec::with_capacity((base + encoded + supplied.len()) * dim);
                table.extend_from_slice(rows);
                if !items.is_empty() {
                    table.extend(self.encode_items(&items)?);
                }
                for v in &supplied {
                    table.extend_from_slice(v);
                }
                let mut scores = Vec::new();
                host.scorer
                    .score(h, &table, &candidate_rows, &mut scores)
                    .ok_or_else(|| CoreError::Device("a candidate row outside the table".into()))?;
                Output::Host { scores, table }
            }
            _ => self.score_on_device(&state, items, &supplied, &candidate_rows)?,
        };
        let pending = PendingRanking {
            output,
            candidates: candidates
                .iter()
                .enumerate()
                .map(|(i, c)| (c.item_id.clone(), i))
                .collect(),
            candidate_rows,
            event_rows: state.0.event_rows.clone(),
        };
        Ok((Prepared::Pending(Box::new(pending)), Some(state)))
    }

    /// Item vectors of the item encoder for `items` (rows without the padding row), read
    /// back: the host path's one use of burn's modules on a call.
    fn encode_items(&self, items: &[EncodedItem]) -> Result<Vec<f32>> {
        let features = item_features(items.iter(), self.encoder.max_tokens, &self.device);
        read_f32(self.model.item_vectors(features).narrow(0, 1, items.len()))
    }

    /// The candidates' half of [`Reranker::prepare_cached`] with burn's modules (a GPU, or a
    /// model the fused path does not cover): the table grows on the device and is scored
    /// there.
    fn score_on_device(
        &self,
        state: &SessionState,
        items: Vec<EncodedItem>,
        supplied: &[&[f32]],
        candidate_rows: &[usize],
    ) -> Result<Output> {
        let d = &self.device;
        let dim = self.model_dim();
        let mut parts = vec![state.0.table.tensor(dim, d)];
        if !items.is_empty() {
            // `item_features` puts a padding row first: dropped, the session's table has one.
            let features = item_features(items.iter(), self.encoder.max_tokens, d);
            parts.push(self.model.item_vectors(features).narrow(0, 1, items.len()));
        }
        if !supplied.is_empty() {
            let n = supplied.len();
            let flat: Vec<f32> = supplied.concat();
            parts.push(Tensor::<2>::from_data(TensorData::new(flat, [n, dim]), d));
        }
        let table = if parts.len() == 1 { parts.swap_remove(0) } else { Tensor::cat(parts, 0) };
        let n = candidate_rows.len();
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
        let scores = self.model.score_candidates(state.0.h.tensor(dim, d), table.clone(), &cand);
        Ok(Output::Device { scores: Box::new(scores), table: Box::new(table) })
    }

    /// The session half of a call: the window's items in a table (row 0 padding; an event's
    /// own vector, else a vector a candidate of this call gives, else the encoder's) and the
    /// model's state after the last event. `skip` is the window's offset in the session (for
    /// error fields).
    fn session_state(
        &self,
        window: &[SessionEvent],
        skip: usize,
        candidates: &[Candidate],
        previous: Option<&SessionState>,
    ) -> Result<SessionState> {
        let dim = self.model_dim();
        // Vectors given anywhere in the call, first one per id wins (the session's first).
        let mut given: HashMap<&str, &[f32]> = HashMap::new();
        for e in window {
            if let Some(v) = e.vector.as_deref() {
                given.entry(e.item_id.as_str()).or_insert(v);
            }
        }
        for c in candidates {
            if let Some(v) = c.vector.as_deref() {
                given.entry(c.item_id.as_str()).or_insert(v);
            }
        }
        let mut slots: HashMap<&str, Slot> = HashMap::new();
        let mut items: Vec<EncodedItem> = Vec::new();
        let mut supplied: Vec<&[f32]> = Vec::new();
        let mut event_slots = Vec::with_capacity(window.len());
        for (i, e) in window.iter().enumerate() {
            let id = e.item_id.as_str();
            let slot = match slots.get(id) {
                Some(&s) => s,
                None => {
                    let slot = if let Some(&v) = given.get(id) {
                        supplied.push(v);
                        Slot::Given(supplied.len() - 1)
                    } else {
                        let enc =
                            self.encoder.encode_item(id, e.content.as_ref()).map_err(|err| {
                                CoreError::input(format!("session[{}]", skip + i), err.to_string())
                            })?;
                        items.push(enc);
                        Slot::Encoded(items.len() - 1)
                    };
                    slots.insert(id, slot);
                    slot
                }
            };
            event_slots.push(slot);
        }
        let encoded = items.len();
        let row_of = |s: Slot| match s {
            Slot::Row(r) => r,
            Slot::Encoded(i) => 1 + i,
            Slot::Given(j) => 1 + encoded + j,
        };
        let d = &self.device;
        let table = match &self.host {
            Some(host) => {
                let mut table = Vec::with_capacity((1 + encoded + supplied.len()) * dim);
                table.extend_from_slice(&host.padding);
                if !items.is_empty() {
                    table.extend(self.encode_items(&items)?);
                }
                for v in &supplied {
                    table.extend_from_slice(v);
                }
                Held::Host(table.into())
            }
            None => {
                // Row 0 (padding) comes from the item encoder's padding features.
                let mut table = self.model.item_vectors(item_features(
                    items.iter(),
                    self.encoder.max_tokens,
                    d,
                ));
                if !supplied.is_empty() {
                    let n = supplied.len();
                    let given =
                        Tensor::<2>::from_data(TensorData::new(supplied.concat(), [n, dim]), d);
                    table = Tensor::cat(vec![table, given], 0);
                }
                Held::Device(Box::new(table))
            }
        };
        let mut events = Vec::with_capacity(window.len());
        let mut event_rows = Vec::with_capacity(window.len());
        let mut rows = HashMap::with_capacity(slots.len());
        for (e, &s) in window.iter().zip(&event_slots) {
            let row = row_of(s);
            events.push(EncodedEvent { row: row as u32, kind: e.kind, timestamp: e.timestamp });
            event_rows.push((row, e.item_id.clone()));
            rows.entry(e.item_id.clone()).or_insert(row);
        }
        // One new click after the state this call was given: encode that event only. A window
        // that is already full slides with the next click (every position changes), so there
        // burn's batched forward, faster for a whole window, runs and nothing is kept.
        let continued = previous.and_then(|p| p.cache_extended_by(window)).cloned();
        let fused = self
            .fused
            .as_ref()
            .filter(|_| continued.is_some() || window.len() < self.encoder.max_len);
        let (h, cache) = match (fused, &table) {
            (Some(fused), Held::Host(vectors)) => {
                let cache = self.fused_state(fused, vectors, &events, continued)?;
                let mut h = cache.state().to_vec();
                if let Some(host) = &self.host {
                    host.scorer.scale_state(&mut h);
                }
                (Held::Host(h.into()), Some(cache))
            }
            (Some(fused), Held::Device(t)) => {
                let cache = self.fused_state(fused, &read_f32(*t.clone())?, &events, continued)?;
                let h =
                    Tensor::<2>::from_data(TensorData::new(cache.state().to_vec(), [1, dim]), d);
                (Held::Device(Box::new(self.model.scale_state(h))), Some(cache))
            }
            (None, table) => {
                let input = session_input(&[&events], self.encoder.max_len, d);
                let h = self.model.session_state(table.tensor(dim, d), &input);
                match table {
                    Held::Host(_) => (Held::Host(read_f32(h)?.into()), None),
                    Held::Device(_) => (Held::Device(Box::new(h)), None),
                }
            }
        };
        // Reusable only when nothing came from this call's candidates or the encoder's view of
        // an unknown id: then the state depends on the window's events alone.
        let cacheable = window.iter().all(|e| e.vector.is_some());
        Ok(SessionState(Arc::new(StateInner {
            window: window.to_vec(),
            cacheable,
            h,
            cache,
            n_rows: 1 + encoded + supplied.len(),
            table,
            rows,
            event_rows,
        })))
    }

    /// The fused encoder's state after `events` (rows of the `[n_rows, d]` table `vectors`),
    /// continuing `cache` when it holds their first positions. Events are window-relative, as
    /// `session_input` makes them: the first one has no time gap.
    fn fused_state(
        &self,
        fused: &FusedSessionEncoder,
        vectors: &[f32],
        events: &[EncodedEvent],
        cache: Option<EncoderCache>,
    ) -> Result<EncoderCache> {
        let dim = self.model_dim();
        let mut cache = cache.unwrap_or_else(|| fused.new_cache());
        for (j, e) in events.iter().enumerate().skip(cache.len()) {
            let gap = match (j.checked_sub(1).and_then(|p| events[p].timestamp), e.timestamp) {
                (Some(prev), Some(now)) => Some(now - prev),
                _ => None,
            };
            let row = e.row as usize;
            let item = vectors.get(row * dim..(row + 1) * dim).unwrap_or(&[]);
            fused
                .push(&mut cache, item, e.kind as usize + 1, time_gap_bucket(gap))
                .ok_or_else(|| CoreError::Device("the session does not fit the encoder".into()))?;
        }
        Ok(cache)
    }
}

impl Held {
    /// As a `[n, dim]` tensor on `device` (host floats are copied there).
    fn tensor(&self, dim: usize, device: &Device) -> Tensor<2> {
        match self {
            Held::Device(t) => *t.clone(),
            Held::Host(v) => {
                Tensor::<2>::from_data(TensorData::new(v.to_vec(), [v.len() / dim, dim]), device)
            }
        }
    }
}

/// The session half of a re-rank ([`Reranker::prepare_cached`]): the model's state after the
/// window's last event and the window's item rows. Cheap to clone (shared): a storefront
/// keeps it and hands it back with every call.
#[derive(Debug, Clone)]
pub struct SessionState(Arc<StateInner>);

#[derive(Debug)]
struct StateInner {
    /// The events it was computed for (what a later call must match to reuse it).
    window: Vec<SessionEvent>,
    /// Every event carried its own vector: nothing else went into it.
    cacheable: bool,
    /// `[1, d]`, ready for scoring ([`SessionRankModel::score_candidates`]).
    h: Held,
    /// The fused encoder's keys and values (CPU), continued by the next click.
    cache: Option<EncoderCache>,
    /// `[n_rows, d]`: padding, then the window's distinct items.
    table: Held,
    n_rows: usize,
    rows: HashMap<String, usize>,
    event_rows: Vec<(usize, String)>,
}

impl SessionState {
    fn reusable_for(&self, window: &[SessionEvent]) -> bool {
        self.0.cacheable && self.0.window == window
    }

    /// The encoder cache when `window` is this state's window and one more event (a click
    /// inside the window: the earlier positions' keys and values still hold).
    fn cache_extended_by(&self, window: &[SessionEvent]) -> Option<&EncoderCache> {
        let s = &self.0;
        let n = s.window.len();
        let cache = s.cache.as_ref()?;
        (s.cacheable && cache.len() == n && window.len() == n + 1 && window[..n] == s.window[..])
            .then_some(cache)
    }
}

/// Where an item's vector comes from in one call: a row already numbered, encoded by the
/// model here, or given by the caller.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Row(usize),
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
    /// Scores and item table on the host, read back synchronously (native and the CPU in
    /// the browser; on WebGPU use [`PendingRanking::read_async`]).
    pub fn read(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        match &self.output {
            Output::Device { scores, table } => {
                Ok((read_f32(*scores.clone())?, read_f32(*table.clone())?))
            }
            Output::Host { scores, table } => Ok((scores.clone(), table.clone())),
        }
    }

    /// [`PendingRanking::read`] without blocking (the only readback WebGPU allows).
    pub async fn read_async(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        match &self.output {
            Output::Device { scores, table } => {
                Ok((read_f32_async(*scores.clone()).await?, read_f32_async(*table.clone()).await?))
            }
            Output::Host { scores, table } => Ok((scores.clone(), table.clone())),
        }
    }

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
        list: Vec<ListItem<'a>>,
    ) -> Result<Ranking> {
        let items = self.ranked(scores, table, d)?;
        self.arranged(items, scores, table, d, rules, list)
    }

    /// The second half of [`PendingRanking::finish_with`], on [`PendingRanking::ranked`]'s
    /// items: the rules alone (the browser package times it on its own).
    pub fn arranged<'a>(
        &self,
        mut items: Vec<RankedItem>,
        scores: &[f32],
        table: &'a [f32],
        d: usize,
        rules: &Rules,
        mut list: Vec<ListItem<'a>>,
    ) -> Result<Ranking> {
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

    /// The candidates in upstream order with their scores and "because you viewed" items.
    pub fn ranked(&self, scores: &[f32], table: &[f32], d: usize) -> Result<Vec<RankedItem>> {
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
                let because = top_two(&distinct, crow, vec(crow), vec)
                    .into_iter()
                    .flatten()
                    .map(|(weight, k)| Because { item_id: distinct[k].1.to_string(), weight })
                    .collect();
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

/// The (at most) two session items with the largest positive similarity to a candidate
/// (vector `cv`, row `crow`), as (weight, index into `distinct`); on a tie the earlier event
/// wins. Runs for every candidate on every click: no allocation.
fn top_two<'t>(
    distinct: &[(usize, &str)],
    crow: usize,
    cv: &[f32],
    vec: impl Fn(usize) -> &'t [f32],
) -> [Option<(f32, usize)>; 2] {
    let mut best: [Option<(f32, usize)>; 2] = [None, None];
    for (k, &(row, _)) in distinct.iter().enumerate() {
        if row == crow {
            continue;
        }
        let w = dot(cv, vec(row));
        if w.is_nan() || w <= 0.0 {
            continue;
        }
        match best {
            [Some((w0, _)), _] if w <= w0 => {
                if best[1].is_none_or(|(w1, _)| w > w1) {
                    best[1] = Some((w, k));
                }
            }
            _ => best = [Some((w, k)), best[0]],
        }
    }
    best
}
