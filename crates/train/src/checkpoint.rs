//! Per-epoch checkpoints: a killed run restarted with the same arguments resumes after its
//! last finished epoch, with the same numbers as if it had never stopped.
//!
//! A checkpoint directory holds `state.json` ([`CheckpointState`]), `model.bpk` (the weights
//! being trained), `optim.bpk` (AdamW's moments) and `best.bpk` (the best model so far). Each
//! save writes every file under a temporary name first and then renames them, so a kill
//! mid-save leaves the previous checkpoint intact.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::{ModuleRecord, RecordError};
use serde::{Deserialize, Serialize};
use sessionrank_model::SessionRankModel;

use crate::early_stopping::EarlyStopping;
use crate::progress::EpochLog;
use crate::{Result, TrainConfig, TrainError};

const STATE: &str = "state.json";
const MODEL: &str = "model.bpk";
const BEST: &str = "best.bpk";
const OPTIM: &str = "optim.bpk";

/// Where a run stands after an epoch: everything but the weights.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CheckpointState {
    /// The run's [`TrainConfig`] as JSON, compared on resume.
    pub config: serde_json::Value,
    /// [`sessionrank_data::Dataset::name`] of the training data.
    pub dataset: String,
    /// Epochs finished.
    pub epoch: usize,
    /// Optimiser steps taken (the schedule's position).
    pub step: usize,
    #[serde(flatten)]
    pub stopping: EarlyStopping,
    pub history: Vec<EpochLog>,
    pub train_seconds: f64,
}

impl CheckpointState {
    /// The state of a run that has not trained yet.
    pub fn fresh(config: &TrainConfig, dataset: &str) -> Result<Self> {
        let config = serde_json::to_value(config)
            .map_err(|source| TrainError::Json { what: "the training config".into(), source })?;
        Ok(Self {
            config,
            dataset: dataset.to_string(),
            epoch: 0,
            step: 0,
            stopping: EarlyStopping::default(),
            history: Vec::new(),
            train_seconds: 0.0,
        })
    }
}

/// A run's whole state: what a checkpoint saves and restores.
pub(crate) struct RunState {
    pub state: CheckpointState,
    /// The weights being trained (autodiff).
    pub model: SessionRankModel,
    pub optim: ModuleOptimizer,
    /// The best model so far (inference mode), as early stopping chose it.
    pub best: Option<SessionRankModel>,
}

/// Write the checkpoint of a finished epoch into `dir`.
pub(crate) fn save(dir: &Path, run: &RunState) -> Result<()> {
    let RunState { state, model, optim, best } = run;
    std::fs::create_dir_all(dir).map_err(TrainError::io(dir))?;
    let tmp = |name: &str| dir.join(format!("{name}.tmp"));
    let rec = record_error(dir);
    model.clone().into_record().save(tmp(MODEL)).map_err(rec)?;
    optim.save(tmp(OPTIM)).map_err(rec)?;
    if let Some(b) = best {
        b.clone().into_record().save(tmp(BEST)).map_err(rec)?;
    }
    let json = serde_json::to_vec_pretty(state).map_err(|source| TrainError::Json {
        what: format!("checkpoint state {}", dir.display()),
        source,
    })?;
    std::fs::write(tmp(STATE), json).map_err(TrainError::io(&tmp(STATE)))?;
    for name in [MODEL, OPTIM, BEST, STATE] {
        let from = tmp(name);
        if from.exists() {
            std::fs::rename(&from, dir.join(name)).map_err(TrainError::io(&from))?;
        }
    }
    Ok(())
}

/// The checkpoint in `dir`, restored into `model` and `optim` (freshly initialised ones of
/// this run), or `None` when there is none. The returned state carries `fresh`'s config: the
/// schedule and budget of this invocation win over the checkpoint's.
pub(crate) fn resume(
    dir: &Path,
    fresh: &CheckpointState,
    model: SessionRankModel,
    optim: ModuleOptimizer,
) -> Result<Option<RunState>> {
    let state_path = dir.join(STATE);
    if !state_path.exists() {
        return Ok(None);
    }
    let bytes = std::fs::read(&state_path).map_err(TrainError::io(&state_path))?;
    let state: CheckpointState = serde_json::from_slice(&bytes).map_err(|source| {
        TrainError::Json { what: format!("checkpoint state {}", state_path.display()), source }
    })?;
    if comparable(&state.config) != comparable(&fresh.config) || state.dataset != fresh.dataset {
        return Err(TrainError::CheckpointMismatch { path: dir.display().to_string() });
    }
    let rec = record_error(dir);
    let load = |p: PathBuf| ModuleRecord::load(&p).map_err(rec);
    let model = model.try_load_record(load(dir.join(MODEL))?).map_err(rec)?;
    let optim = optim.load(dir.join(OPTIM)).map_err(rec)?;
    let best = if dir.join(BEST).exists() {
        Some(model.valid().try_load_record(load(dir.join(BEST))?).map_err(rec)?)
    } else {
        None
    };
    let state = CheckpointState { config: fresh.config.clone(), ..state };
    Ok(Some(RunState { state, model, optim, best }))
}

/// A config as JSON without what a resumed run may change. A run may be resumed for more
/// epochs, with another time budget or patience (how long it goes on): anything else (model,
/// optimiser, schedule, data) must match.
fn comparable(config: &serde_json::Value) -> serde_json::Value {
    let mut v = config.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("max_epochs");
        o.remove("time_budget_s");
        o.remove("patience");
        // Checkpoints written before these options existed have no key for them at all.
        for key in ["distill", "schedule_epochs"] {
            if o.get(key).is_some_and(serde_json::Value::is_null) {
                o.remove(key);
            }
        }
    }
    v
}

fn record_error(dir: &Path) -> impl Fn(RecordError) -> TrainError + Copy + '_ {
    move |source| TrainError::Record { path: dir.display().to_string(), source }
}
