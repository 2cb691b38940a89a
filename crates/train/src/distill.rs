//! Knowledge distillation: a small student (the browser model) learns from a larger teacher
//! (the same model code with a bigger [`ModelConfig`], trained as usual and exported as a
//! bundle) as well as from the real next item.
//!
//! The student's loss at each step is `(1 - alpha) * CE + alpha * KD`, where KD is
//! `T² · KL(softmax(teacher / T) ‖ softmax(student / T))` at every position that has a
//! target, over the very item table the student's step scores (the whole catalog, or the
//! sampled-softmax table). A temperature above 1 softens both distributions so the student
//! also learns how the teacher ranks the items it does *not* predict; the `T²` keeps the
//! gradient scale comparable to the cross-entropy's (Hinton et al., 2015).
//!
//! The teacher runs without autodiff (its tensors live on the inner device), so no gradient
//! flows into it and it costs one inference pass per step.

use std::path::{Path, PathBuf};

use burn::config::Config;
use burn::tensor::{Device, Int, Tensor, TensorData};
use sessionrank_core::{ModelBundle, Reranker};
use sessionrank_data::Catalog;
use sessionrank_model::{ItemFeatures, ModelConfig, SessionInput, SessionRankModel};

use crate::batch::TrainBatch;
use crate::features::{catalog_features, select_rows};
use crate::loss::batch_logits;
pub use crate::loss::kd_loss;
use crate::{Result, TrainError};

/// Distillation settings of a training run (part of [`crate::TrainConfig`], so a checkpoint
/// written with one teacher is not resumed with another).
#[derive(Config, Debug, PartialEq)]
pub struct DistillConfig {
    /// Directory of the teacher's model bundle (as written by `sessionrank train --out`).
    pub teacher_dir: PathBuf,
    /// Softmax temperature of both distributions in the KD term.
    #[config(default = 2.0)]
    pub temperature: f64,
    /// Weight of the KD term: loss = (1 - alpha) · CE + alpha · KD.
    #[config(default = 0.5)]
    pub alpha: f64,
}

impl DistillConfig {
    /// Reject settings that would silently train something else than asked.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(TrainError::Config(format!(
                "distillation temperature must be > 0, got {}",
                self.temperature
            )));
        }
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(TrainError::Config(format!(
                "distillation alpha must be in 0..=1, got {}",
                self.alpha
            )));
        }
        Ok(())
    }

    /// The teacher these settings name, checked against a student trained on `catalog` with
    /// `student` (see [`Teacher::load`]).
    pub fn load_teacher(
        &self,
        catalog: &Catalog,
        student: &ModelConfig,
        device: &Device,
    ) -> Result<Teacher> {
        self.validate()?;
        let teacher = Teacher::load(&self.teacher_dir, catalog, student, device)?;
        tracing::info!(
            temperature = self.temperature,
            alpha = self.alpha,
            "distilling from teacher {} ({})",
            teacher.version(),
            self.teacher_dir.display()
        );
        Ok(teacher)
    }
}

/// A trained model that scores the student's item table, in inference mode.
#[derive(Debug)]
pub struct Teacher {
    model: SessionRankModel,
    /// The teacher's own features (its tokenizer, its categories) for the *student's* rows:
    /// row `r` describes the item that is row `r` of the student's catalog table, so a
    /// student batch (sessions and, with sampled softmax, `rows`) indexes it unchanged.
    features: ItemFeatures,
    config: ModelConfig,
    version: String,
    /// The inner (non-autodiff) device the teacher runs on.
    device: Device,
}

impl Teacher {
    /// Read a teacher bundle from `dir` for a student trained on `catalog` with `student`.
    pub fn load(
        dir: &Path,
        catalog: &Catalog,
        student: &ModelConfig,
        device: &Device,
    ) -> Result<Self> {
        let err =
            |message: String| TrainError::Teacher { path: dir.display().to_string(), message };
        let bundle = ModelBundle::read_dir(dir).map_err(|e| err(e.to_string()))?;
        Self::from_bundle(&bundle, catalog, student, device).map_err(|e| match e {
            TrainError::Teacher { message, .. } => err(message),
            other => other,
        })
    }

    /// Build a teacher from a bundle in memory. The teacher must know every item of the
    /// student's catalog (by id): the same index is used as is, a reordered or larger one
    /// through a row map; a teacher that lacks items is refused, because the KD target would
    /// be undefined for them. Its context (`max_len`) must be at least the student's, since
    /// both read the same session tensors.
    pub fn from_bundle(
        bundle: &ModelBundle,
        catalog: &Catalog,
        student: &ModelConfig,
        device: &Device,
    ) -> Result<Self> {
        let version = bundle.manifest.model_version.clone();
        let err = |message: String| TrainError::Teacher { path: version.clone(), message };
        let device = device.clone().inner();
        let engine = Reranker::from_bundle(bundle, &device).map_err(|e| err(e.to_string()))?;
        let config = bundle.manifest.config.clone();
        if config.max_len < student.max_len {
            return Err(err(format!(
                "its max_len {} is shorter than the student's {}",
                config.max_len, student.max_len
            )));
        }
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
        let features = if same_index {
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
        Ok(Self { model: engine.model().clone(), features, config, version, device })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// The teacher's logits for `batch`, over the same table and at the same positions as
    /// the student's ([`batch_logits`]): `[m, n_rows]`, on the inner device (a constant for
    /// the student's graph).
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
        batch_logits(&self.model, self.features.clone(), &inner)
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
