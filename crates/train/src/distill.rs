//! Knowledge distillation: a small student (the browser model) learns from a larger teacher
//! (the same model code with a bigger [`ModelConfig`], trained as usual and exported as a
//! bundle) as well as from the real next item.
//!
//! The student's loss at each step is `(1 - alpha) * CE + alpha * KD`, where KD is
//! `T² · KL(softmax(teacher / T) ‖ softmax(student / T))` at every position that has a
//! target, over the very item table the student's step scores (the whole catalog, or the
//! sampled-softmax table). A temperature above 1 softens both distributions so the student
//! also learns how the teacher ranks the items it does *not* predict; the `T²` keeps the
//! gradient scale comparable to the cross-entropy's (Hinton et al., 2015). `alpha` may be
//! annealed linearly over the learning-rate schedule ([`DistillConfig::alpha_end`]).
//!
//! The teacher may be an *ensemble*: several bundles trained on the same catalog (e.g. the
//! seeds of one configuration), whose distributions are averaged geometrically (the mean of
//! their log-softmax). An ensemble of seeds is the cheapest stronger teacher there is: its
//! members already exist, and it is better than each of them, where a same-size teacher
//! teaches a student little it would not learn alone.
//!
//! The teacher runs without autodiff (its tensors live on the inner device), so no gradient
//! flows into it, and it makes its catalog's item vectors once: a step costs each member
//! one pass of its session encoder and one product with its item table.

use std::path::{Path, PathBuf};

use burn::config::Config;
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};
use sessionrank_core::features::{EncodedEvent, session_input};
use sessionrank_core::{ModelBundle, Reranker};
use sessionrank_data::baselines::SessionKnn;
use sessionrank_data::blend::mix_row;
use sessionrank_data::eval::Scorer;
use sessionrank_data::{Catalog, Event, ItemIdx, Session};
use sessionrank_model::{ItemFeatures, ModelConfig, SessionInput, SessionRankModel};

use crate::batch::TrainBatch;
use crate::features::{catalog_features, select_rows};
pub use crate::loss::kd_loss;
use crate::loss::{batch_logits, table_logits};
use crate::scorer::{candidates_of_full, encode_prefix, write_scores};
use crate::{Result, TrainError};

/// Distillation settings of a training run (part of [`crate::TrainConfig`], so a checkpoint
/// written with one teacher is not resumed with another).
#[derive(Config, Debug, PartialEq)]
pub struct DistillConfig {
    /// Directories of the teacher's model bundles (as written by `sessionrank train --out`):
    /// one bundle, or several that form an ensemble.
    pub teacher_dirs: Vec<PathBuf>,
    /// Softmax temperature of both distributions in the KD term.
    #[config(default = 2.0)]
    pub temperature: f64,
    /// Weight of the KD term: loss = (1 - alpha) · CE + alpha · KD (at the first step, when
    /// [`Self::alpha_end`] anneals it).
    #[config(default = 0.5)]
    pub alpha: f64,
    /// The weight at the end of the learning-rate schedule, reached linearly from
    /// [`Self::alpha`] over its steps: the teacher's soft targets can guide the student early,
    /// while its ranking is still forming, and leave the last, low-rate steps to the real next
    /// item (or the reverse). `None` keeps `alpha` for the whole run.
    #[config(default = "None")]
    pub alpha_end: Option<f64>,
    /// Mix session-kNN into the teacher with this weight: the teacher's distribution becomes
    /// `(1 - w) · models + w · kNN` ([`sessionrank_data::blend`]), kNN fit on the training
    /// sessions with each training prefix's own session left out. The hybrid knows what a
    /// small embedding model smooths over (exact item combinations of other sessions), so it
    /// teaches the student what it would not learn alone. `None`: the models only.
    #[config(default = "None")]
    pub knn_weight: Option<f64>,
}

impl DistillConfig {
    /// Reject settings that would silently train something else than asked.
    pub fn validate(&self) -> Result<()> {
        if self.teacher_dirs.is_empty() {
            return Err(TrainError::Config("distillation needs at least one teacher".into()));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(TrainError::Config(format!(
                "distillation temperature must be > 0, got {}",
                self.temperature
            )));
        }
        for (name, value) in [
            ("alpha", Some(self.alpha)),
            ("alpha_end", self.alpha_end),
            ("knn_weight", self.knn_weight),
        ] {
            if let Some(v) = value
                && !(0.0..=1.0).contains(&v)
            {
                return Err(TrainError::Config(format!(
                    "distillation {name} must be in 0..=1, got {v}"
                )));
            }
        }
        Ok(())
    }

    /// The KD weight at optimiser step `step` (0-based) of a schedule of `total_steps`:
    /// [`Self::alpha`] without [`Self::alpha_end`], else the straight line between them
    /// (held at `alpha_end` past the schedule's end).
    pub fn alpha_at(&self, step: usize, total_steps: usize) -> f64 {
        match self.alpha_end {
            None => self.alpha,
            Some(end) => {
                let t = (step as f64 / total_steps.saturating_sub(1).max(1) as f64).min(1.0);
                self.alpha + (end - self.alpha) * t
            }
        }
    }

    /// The teacher these settings name, checked against a student trained on `catalog` with
    /// `student`: every member must know the catalog (see [`Teacher::from_bundle`]) and read
    /// at least the student's context, since all read the same session tensors.
    ///
    /// `train` are the student's training sessions, which a hybrid teacher's kNN
    /// ([`Self::knn_weight`]) is fit on.
    pub fn load_teacher(
        &self,
        catalog: &Catalog,
        train: &[Session],
        student: &ModelConfig,
        device: &Device,
    ) -> Result<Teacher> {
        self.validate()?;
        let mut teacher = Teacher::load_all(&self.teacher_dirs, catalog, device)?;
        if let Some(w) = self.knn_weight {
            teacher = teacher.with_knn(SessionKnn::fit(train, catalog.len()), w as f32);
        }
        for m in &teacher.members {
            if m.config.max_len < student.max_len {
                return Err(TrainError::Teacher {
                    path: m.version.clone(),
                    message: format!(
                        "its max_len {} is shorter than the student's {}",
                        m.config.max_len, student.max_len
                    ),
                });
            }
        }
        tracing::info!(
            temperature = self.temperature,
            alpha = self.alpha,
            alpha_end = ?self.alpha_end,
            knn_weight = ?self.knn_weight,
            "distilling from {} ({} bundle(s))",
            teacher.version(),
            self.teacher_dirs.len()
        );
        Ok(teacher)
    }
}

/// A trained model, or an ensemble of them, that scores the student's item table in
/// inference mode.
#[derive(Debug)]
pub struct Teacher {
    members: Vec<Member>,
    /// The inner (non-autodiff) device the teacher runs on.
    device: Device,
    /// A hybrid teacher's session-kNN and its weight in the mixture.
    knn: Option<(SessionKnn, f32)>,
}

/// What a hybrid teacher's kNN reads for one batch, beside the tensors: at every position
/// that has a target (in the batch's order), the session prefix up to and including it, and
/// the training session it comes from (left out of its neighbours).
#[derive(Debug, Default)]
pub struct KnnQuery {
    pub prefixes: Vec<Vec<Event>>,
    pub sessions: Vec<Option<u32>>,
}

impl KnnQuery {
    /// The query of the batch [`crate::batch::make_batch`] makes of `ids` (same positions,
    /// same order): `seqs` as [`crate::batch::training_sequences`] cut them, `session_of[i]`
    /// the training session sequence `i` came from.
    pub fn of_batch(
        seqs: &[Vec<EncodedEvent>],
        session_of: &[u32],
        ids: &[usize],
        max_len: usize,
    ) -> Self {
        let mut q = Self::default();
        for &i in ids {
            let s = &seqs[i];
            let n_in = (s.len() - 1).min(max_len);
            let start = s.len() - 1 - n_in;
            let events: Vec<Event> = s
                .iter()
                .map(|e| Event {
                    item: e.row.saturating_sub(1),
                    kind: e.kind,
                    timestamp: e.timestamp,
                })
                .collect();
            for t in 0..n_in {
                q.prefixes.push(events[..start + t + 1].to_vec());
                q.sessions.push(session_of.get(i).copied());
            }
        }
        q
    }
}

/// One model of a teacher.
#[derive(Debug)]
struct Member {
    model: SessionRankModel,
    /// The member's item vectors (its own tokenizer, categories and towers) for the
    /// *student's* rows, made once: row `r` is the item of row `r` of the student's catalog
    /// table, so a student batch (sessions and, with sampled softmax, `rows`) indexes it
    /// unchanged. `[n_items + 1, d]`.
    table: Tensor<2>,
    config: ModelConfig,
    version: String,
}

impl Teacher {
    /// Read a teacher bundle from `dir` for a student trained on `catalog`.
    pub fn load(dir: &Path, catalog: &Catalog, device: &Device) -> Result<Self> {
        let err =
            |message: String| TrainError::Teacher { path: dir.display().to_string(), message };
        let bundle = ModelBundle::read_dir(dir).map_err(|e| err(e.to_string()))?;
        Self::from_bundle(&bundle, catalog, device).map_err(|e| match e {
            TrainError::Teacher { message, .. } => err(message),
            other => other,
        })
    }

    /// Read every bundle of `dirs` as one ensemble teacher (one directory: a single model).
    pub fn load_all(dirs: &[PathBuf], catalog: &Catalog, device: &Device) -> Result<Self> {
        let mut members = Vec::with_capacity(dirs.len());
        for dir in dirs {
            members.extend(Self::load(dir, catalog, device)?.members);
        }
        if members.is_empty() {
            return Err(TrainError::Config("a teacher needs at least one bundle".into()));
        }
        Ok(Self { members, device: device.clone().inner(), knn: None })
    }

    /// Build a teacher from a bundle in memory. The teacher must know every item of the
    /// student's catalog (by id): the same index is used as is, a reordered or larger one
    /// through a row map; a teacher that lacks items is refused, because the KD target would
    /// be undefined for them.
    pub fn from_bundle(bundle: &ModelBundle, catalog: &Catalog, device: &Device) -> Result<Self> {
        let version = bundle.manifest.model_version.clone();
        let err = |message: String| TrainError::Teacher { path: version.clone(), message };
        let device = device.clone().inner();
        let engine = Reranker::from_bundle(bundle, &device).map_err(|e| err(e.to_string()))?;
        let config = bundle.manifest.config.clone();
        let encoder = engine.encoder();
        let mut missing = Vec::new();
        let mut rows = Vec::with_capacity(catalog.len());
        for item in catalog.items() {
            match encoder.item_row(&item.id) {
                Some(r) => rows.push(r),
                None => missing.push(item.id.as_str()),
            }
        }
        if !missing.is_empty() {
            let shown: Vec<&str> = missing.iter().take(3).copied().collect();
            return Err(err(format!(
                "was trained on another item index: {} of the student's {} items are unknown to it (e.g. {:?}); train the teacher on the same catalog",
                missing.len(),
                catalog.len(),
                shown
            )));
        }
        let same_index = encoder.n_items() == catalog.len()
            && rows.iter().enumerate().all(|(i, &r)| r as usize == i + 1);
        let features: ItemFeatures = if same_index {
            catalog_features(encoder, &device)
        } else {
            tracing::info!(
                "teacher {version}: item index differs in order or size, mapping rows by item id"
            );
            let full = catalog_features(encoder, &device);
            let mut map = vec![0i64];
            map.extend(rows.iter().map(|&r| r as i64));
            let n = map.len();
            select_rows(full, Tensor::<1, Int>::from_data(TensorData::new(map, [n]), &device))
        };
        let model = engine.model().clone();
        let table = model.item_vectors(features);
        Ok(Self { members: vec![Member { model, table, config, version }], device, knn: None })
    }

    /// The members' model versions, joined with `+` (and `+session-knn@w` for a hybrid).
    pub fn version(&self) -> String {
        let mut v = self.members.iter().map(|m| m.version.as_str()).collect::<Vec<_>>().join("+");
        if let Some((_, w)) = &self.knn {
            v.push_str(&format!("+session-knn@{w}"));
        }
        v
    }

    /// This teacher mixed with `knn` at `weight` (a hybrid teacher, see
    /// [`DistillConfig::knn_weight`]).
    pub fn with_knn(mut self, knn: SessionKnn, weight: f32) -> Self {
        self.knn = Some((knn, weight.clamp(0.0, 1.0)));
        self
    }

    /// Whether [`Self::hybrid_logits`] needs a [`KnnQuery`] (a hybrid teacher).
    pub fn uses_knn(&self) -> bool {
        self.knn.is_some()
    }

    /// [`Self::logits`] of a hybrid teacher: the log of the mixture of the models'
    /// distribution over the step's table with kNN's votes for the same rows, both
    /// normalised over the table (as the student's softmax is). Without kNN, or if the
    /// step's rows cannot be read back, the models' logits.
    pub fn hybrid_logits(&self, batch: &TrainBatch, query: &KnnQuery) -> Tensor<2> {
        let logits = self.logits(batch);
        let Some((knn, weight)) = &self.knn else { return logits };
        let [m, n_rows] = logits.dims();
        if query.prefixes.len() != m {
            tracing::warn!("kNN query has {} prefixes for {m} targets", query.prefixes.len());
            return logits;
        }
        let rows: Vec<i64> = match &batch.rows {
            Some(r) => match r.clone().inner().into_data().convert::<i64>().try_into_vec::<i64>() {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!("reading the step's rows: {e:?}");
                    return logits;
                }
            },
            None => (0..n_rows as i64).collect(),
        };
        let n = knn.n_items();
        let prefixes: Vec<&[Event]> = query.prefixes.iter().map(Vec::as_slice).collect();
        let mut full = vec![0f32; m * n];
        knn.score_leaving_out(&prefixes, &query.sessions, &mut full);
        let mut votes = vec![0f32; m * n_rows];
        let (mut model_share, mut knn_share) = (vec![1f32; m], vec![0f32; m]);
        for k in 0..m {
            let src = &full[k * n..(k + 1) * n];
            let dst = &mut votes[k * n_rows..(k + 1) * n_rows];
            // Table row r is catalog item r - 1 (row 0: padding, no votes).
            for (v, &r) in dst.iter_mut().zip(&rows) {
                *v = usize::try_from(r - 1).ok().and_then(|i| src.get(i)).copied().unwrap_or(0.0);
            }
            let total: f32 = dst.iter().sum();
            if total > 0.0 {
                model_share[k] = 1.0 - weight;
                knn_share[k] = weight / total;
            }
        }
        let column = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [m, 1]), &self.device);
        let votes = Tensor::<2>::from_data(TensorData::new(votes, [m, n_rows]), &self.device);
        let mixed = softmax(logits, 1) * column(model_share) + votes * column(knn_share);
        // A floor instead of ln 0: the KD term multiplies the teacher's probability by its
        // log, and 0 · −∞ would be NaN.
        mixed.clamp_min(1e-30).log()
    }

    /// Models in the ensemble.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Never true: a teacher has at least one model.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The teacher's logits for `batch`, over the same table and at the same positions as
    /// the student's ([`batch_logits`]): `[m, n_rows]`, on the inner device (a constant for
    /// the student's graph). One model gives its raw logits; an ensemble the mean of its
    /// members' log-probabilities (a logit vector whose softmax is their normalised geometric
    /// mean).
    pub fn logits(&self, batch: &TrainBatch) -> Tensor<2> {
        let inner = TrainBatch {
            input: SessionInput {
                items: batch.input.items.clone().inner(),
                kinds: batch.input.kinds.clone().inner(),
                gaps: batch.input.gaps.clone().inner(),
                last: batch.input.last.clone().inner(),
            },
            positions: batch.positions.clone().inner(),
            targets: batch.targets.clone().inner(),
            n_targets: batch.n_targets,
            rows: batch.rows.clone().map(Tensor::inner),
        };
        debug_assert!(!self.device.is_autodiff());
        let member_logits = |m: &Member| {
            let table = match &inner.rows {
                Some(rows) => m.table.clone().select(0, rows.clone()),
                None => m.table.clone(),
            };
            table_logits(&m.model, table, &inner)
        };
        if let [only] = self.members.as_slice() {
            return member_logits(only);
        }
        self.mean_log_probs(self.members.iter().map(member_logits))
    }

    /// The mean of `log_softmax(logits)` over the members (`logits` yields one per member).
    fn mean_log_probs(&self, logits: impl Iterator<Item = Tensor<2>>) -> Tensor<2> {
        let n = self.members.len() as f64;
        let mut sum: Option<Tensor<2>> = None;
        for l in logits {
            let lp = log_softmax(l, 1);
            sum = Some(match sum {
                Some(s) => s + lp,
                None => lp,
            });
        }
        sum.map_or_else(|| Tensor::zeros([0, 0], &self.device), |s| s / n)
    }
}

/// The teacher as a full-catalog scorer, so an ensemble is evaluated by exactly the protocol
/// code of the models and baselines (`sessionrank eval --bundle A --bundle B ...`).
impl Scorer for Teacher {
    fn name(&self) -> String {
        let models = if self.members.len() == 1 {
            "sessionrank".into()
        } else {
            format!("sessionrank-ensemble-{}", self.members.len())
        };
        match &self.knn {
            Some((_, w)) => format!("{models}+session-knn@{w}"),
            None => models,
        }
    }

    fn n_items(&self) -> usize {
        self.members[0].table.dims()[0] - 1
    }

    fn score_batch(&self, prefixes: &[&[Event]], out: &mut [f32]) {
        let n = self.n_items();
        let encoded: Vec<Vec<EncodedEvent>> = prefixes.iter().map(|p| encode_prefix(p)).collect();
        let refs: Vec<&[EncodedEvent]> = encoded.iter().map(Vec::as_slice).collect();
        let b = prefixes.len();
        let member_scores = |m: &Member| {
            let input = session_input(&refs, m.config.max_len, &self.device);
            m.model.forward_full(m.table.clone(), &input).slice([0..b, 1..n + 1]) // [b, n]
        };
        let scores = match self.members.as_slice() {
            [only] => member_scores(only),
            _ => self.mean_log_probs(self.members.iter().map(member_scores)),
        };
        write_scores(scores, out);
        if let Some((knn, weight)) = &self.knn {
            let mut votes = vec![0f32; out.len()];
            knn.score_batch(prefixes, &mut votes);
            for (row, v) in out.chunks_mut(n).zip(votes.chunks(n)) {
                mix_row(row, v, *weight);
            }
        }
    }

    fn score_candidates(&self, prefix: &[Event], candidates: &[ItemIdx]) -> Vec<f32> {
        candidates_of_full(self, prefix, candidates)
    }
}

/// The KD term of one step: the student's logits for `batch` (with `features`, the
/// student's own feature table) against the teacher's.
pub fn batch_kd_loss(
    student: &SessionRankModel,
    features: ItemFeatures,
    teacher: &Teacher,
    batch: &TrainBatch,
    temperature: f64,
) -> Tensor<1> {
    kd_loss(batch_logits(student, features, batch), teacher.logits(batch), temperature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(alpha: f64, alpha_end: Option<f64>) -> DistillConfig {
        DistillConfig::new(vec![PathBuf::from("teacher")])
            .with_alpha(alpha)
            .with_alpha_end(alpha_end)
    }

    #[test]
    fn a_constant_alpha_stays_and_an_annealed_one_runs_the_schedule() {
        assert_eq!(config(0.5, None).alpha_at(0, 100), 0.5);
        assert_eq!(config(0.5, None).alpha_at(99, 100), 0.5);
        let annealed = config(0.9, Some(0.1));
        assert_eq!(annealed.alpha_at(0, 101), 0.9);
        assert!((annealed.alpha_at(50, 101) - 0.5).abs() < 1e-12);
        assert!((annealed.alpha_at(100, 101) - 0.1).abs() < 1e-12);
        // A run that stops inside a longer schedule ends between the two; past its end the
        // weight holds.
        assert!((annealed.alpha_at(1000, 101) - 0.1).abs() < 1e-12);
        let rising = config(0.0, Some(1.0));
        assert!(rising.alpha_at(25, 101) < rising.alpha_at(75, 101));
        // A one-step schedule does not divide by zero.
        assert_eq!(config(0.2, Some(0.8)).alpha_at(0, 1), 0.2);
    }

    #[test]
    fn weights_outside_zero_to_one_are_refused() {
        assert!(config(0.5, Some(0.0)).validate().is_ok());
        let refusal = |c: DistillConfig| c.validate().err().map(|e| e.to_string());
        let err = refusal(config(0.5, Some(1.5))).unwrap_or_default();
        assert!(err.contains("alpha_end") && err.contains("1.5"), "{err}");
        let err = refusal(config(-0.1, None)).unwrap_or_default();
        assert!(err.contains("alpha must be in 0..=1"), "{err}");
        assert!(config(0.5, Some(f64::NAN)).validate().is_err());
    }
}
