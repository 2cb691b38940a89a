//! The training loop: full-softmax next-item cross-entropy at every session position,
//! AdamW with warm-up + cosine decay, validation-based early stopping, checkpoints that a
//! killed run resumes from. The same code runs on `Device::flex()` and `Device::wgpu(..)`.
//! With `config.distill`, a teacher bundle adds a KD term to the loss (see [`crate::distill`]).

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::index::sample;
use serde::{Deserialize, Serialize};
use sessionrank_core::features::{EncodedEvent, FeatureEncoder};
use sessionrank_data::eval::evaluate_full;
use sessionrank_data::{Dataset, RankingMetrics, TestCase};
use sessionrank_model::{ItemFeatures, SessionRankModel};

use crate::batch::{
    TrainBatch, length_bucketed_batches, make_batch, make_sampled_batch, training_sequences,
};
use crate::distill::{Teacher, kd_loss};
use crate::{ModelScorer, Result, TrainConfig, TrainError};

/// One epoch's record (the training curve of the report).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub steps: usize,
    pub train_loss: f64,
    /// Mean distillation term (KD) of the same sampled steps; `None` without a teacher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_kd_loss: Option<f64>,
    pub valid: RankingMetrics,
    pub lr: f64,
    pub seconds: f64,
}

/// What a finished run returns.
#[derive(Debug)]
pub struct TrainOutcome {
    /// The best model by validation MRR@20 (inference mode, on the inner device).
    pub model: SessionRankModel,
    pub history: Vec<EpochLog>,
    pub best_epoch: usize,
    pub train_seconds: f64,
    pub targets_per_second: f64,
}

/// Where a run stands, as reported to [`TrainOptions::on_progress`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainProgress {
    /// The epoch being trained (1-based); after its validation, the epoch just finished.
    pub epoch: usize,
    pub max_epochs: usize,
    /// Steps done in this epoch.
    pub step: usize,
    pub steps_per_epoch: usize,
    /// The last training loss read back (every 20th step).
    pub loss: Option<f64>,
    /// The distillation term (KD) of that same step, when a teacher guides the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kd_loss: Option<f64>,
    /// The latest finished epoch, with its validation metrics.
    pub last_epoch: Option<EpochLog>,
    /// 0..1: the larger of the share of steps done and the share of the time budget used, so
    /// a run that the budget will stop early still ends near 1.
    pub fraction: f64,
}

/// How a run starts and whom it tells how it goes. `Default` is a fresh run without
/// checkpoints or progress reports, which is what [`train`] does.
#[derive(Default, Clone, Copy)]
pub struct TrainOptions<'a> {
    /// Checkpoint every epoch here; an interrupted run with the same config resumes (and a
    /// checkpoint wins over `initial_model`).
    pub checkpoint_dir: Option<&'a Path>,
    /// Start from these weights instead of fresh ones (warm start). Their shapes must match
    /// `config.model`; see [`crate::warm::remap_model`] for a model of another item index.
    pub initial_model: Option<&'a SessionRankModel>,
    /// Called every 20 steps and after every epoch's validation, on the training thread:
    /// keep it cheap.
    pub on_progress: Option<&'a dyn Fn(&TrainProgress)>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CheckpointState {
    config: serde_json::Value,
    dataset: String,
    epoch: usize,
    step: usize,
    best_score: f64,
    best_epoch: usize,
    bad_epochs: usize,
    history: Vec<EpochLog>,
    train_seconds: f64,
}

const STATE: &str = "state.json";
const MODEL: &str = "model.bpk";
const BEST: &str = "best.bpk";
const OPTIM: &str = "optim.bpk";

/// Learning rate at `step`: linear warm-up, then cosine decay to 5% of the peak.
pub fn learning_rate(config: &TrainConfig, step: usize, total_steps: usize) -> f64 {
    // Short runs (small datasets) warm up over at most a tenth of the run.
    let warmup = config.warmup_steps.min(total_steps / 10).max(1);
    let warm = ((step + 1) as f64 / warmup as f64).min(1.0);
    let progress = (step as f64 / total_steps.max(1) as f64).min(1.0);
    let cosine = 0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
    config.lr * warm * cosine
}

/// Cross-entropy of the next item at every position of `batch`, over the whole table.
///
/// The logits are computed only at positions that have a target (`[m, n_rows]`, not
/// `[batch, len, n_rows]`): with 43k items that is the difference between 0.2 and 1 GB.
pub fn batch_loss(
    model: &SessionRankModel,
    features: ItemFeatures,
    batch: &TrainBatch,
    label_smoothing: f64,
) -> Tensor<1> {
    cross_entropy(batch_logits(model, features, batch), batch, label_smoothing)
}

/// Logits of the next item at every position of `batch` that has a target, over the step's
/// item table (the catalog, or `batch.rows` of it with sampled softmax): `[m, n_rows]`.
/// The distillation teacher calls this too, so both score exactly the same table.
pub fn batch_logits(
    model: &SessionRankModel,
    features: ItemFeatures,
    batch: &TrainBatch,
) -> Tensor<2> {
    let features = match &batch.rows {
        Some(rows) => select_rows(features, rows.clone()),
        None => features,
    };
    let table = model.item_vectors(features); // [n, d]
    let h = model.session.forward(table.clone(), &batch.input); // [b, l, d]
    let [b, l, d] = h.dims();
    let h = h.reshape([b * l, d]).select(0, batch.positions.clone()); // [m, d]
    model.logits(h, table) // [m, n]
}

/// Mean cross-entropy of `batch.targets` under `logits` (`[m, n_rows]`).
pub fn cross_entropy(logits: Tensor<2>, batch: &TrainBatch, label_smoothing: f64) -> Tensor<1> {
    let logp = log_softmax(logits, 1);
    let m = batch.n_targets;
    let nll = logp.clone().gather(1, batch.targets.clone().reshape([m, 1])).reshape([m]).neg();
    let loss = if label_smoothing > 0.0 {
        let smooth = logp.mean_dim(1).reshape([m]).neg();
        nll * (1.0 - label_smoothing) + smooth * label_smoothing
    } else {
        nll
    };
    loss.mean()
}

/// The feature rows `rows` of a table.
pub fn select_rows(f: ItemFeatures, rows: Tensor<1, Int>) -> ItemFeatures {
    ItemFeatures {
        ids: f.ids.select(0, rows.clone()),
        tokens: f.tokens.select(0, rows.clone()),
        categories: f.categories.select(0, rows.clone()),
        prices: f.prices.select(0, rows),
    }
}

/// Feature table for the whole catalog (row 0 padding, row `i + 1` = catalog item `i`).
pub fn catalog_features(encoder: &FeatureEncoder, device: &Device) -> ItemFeatures {
    encoder.features(encoder.known_items().iter(), device)
}

/// Hide a random `share` of item ids (set to 0, "unknown") for one step.
fn drop_ids(
    features: &ItemFeatures,
    share: f64,
    rng: &mut StdRng,
    device: &Device,
) -> ItemFeatures {
    if share <= 0.0 {
        return features.clone();
    }
    let n = features.ids.dims()[0];
    let k = ((n as f64) * share) as usize;
    let mut keep = vec![1i64; n];
    for i in sample(rng, n, k.min(n)) {
        keep[i] = 0;
    }
    let keep = Tensor::<1, Int>::from_data(TensorData::new(keep, [n]), device);
    ItemFeatures { ids: features.ids.clone() * keep, ..features.clone() }
}

/// Evaluate `model` (inference mode) on `cases` with the full-ranking protocol.
pub fn evaluate_model(
    model: &SessionRankModel,
    encoder: &FeatureEncoder,
    cases: &[TestCase],
    exclude_history: bool,
    device: &Device,
) -> RankingMetrics {
    let scorer =
        ModelScorer::new(model.clone(), catalog_features(encoder, device), device, "sessionrank");
    evaluate_full(&scorer, cases, encoder.n_items(), 256, exclude_history)
}

/// Train on `dataset`. `device` is the plain device (`Device::flex()`, `Device::wgpu(..)`);
/// autodiff is added here. With `checkpoint_dir`, every epoch is checkpointed there and an
/// interrupted run with the same config resumes where it stopped.
pub fn train(
    dataset: &Dataset,
    encoder: &FeatureEncoder,
    config: &TrainConfig,
    device: &Device,
    checkpoint_dir: Option<&Path>,
) -> Result<TrainOutcome> {
    train_with(
        dataset,
        encoder,
        config,
        device,
        TrainOptions { checkpoint_dir, ..TrainOptions::default() },
    )
}

/// [`train`] with a starting model and a progress callback.
pub fn train_with(
    dataset: &Dataset,
    encoder: &FeatureEncoder,
    config: &TrainConfig,
    device: &Device,
    options: TrainOptions<'_>,
) -> Result<TrainOutcome> {
    let TrainOptions { checkpoint_dir, initial_model, on_progress } = options;
    let start = Instant::now();
    let ad = device.clone().autodiff();
    ad.seed(config.seed);
    let max_len = config.model.max_len;
    let seqs: Vec<Vec<EncodedEvent>> = training_sequences(&dataset.train, max_len);
    if seqs.is_empty() {
        return Err(TrainError::Config("no training session has two or more events".into()));
    }
    let n_targets: usize = seqs.iter().map(|s| s.len() - 1).sum();
    let steps_per_epoch = seqs.len().div_ceil(config.batch_size);
    // The schedule may run past the last epoch (`schedule_epochs`); progress counts the epochs.
    let total_steps = steps_per_epoch * config.schedule_epochs.unwrap_or(config.max_epochs).max(1);
    let run_steps = steps_per_epoch * config.max_epochs;
    let features_ad = catalog_features(encoder, &ad);
    let teacher = match &config.distill {
        Some(d) => {
            d.validate()?;
            let t = Teacher::load(&d.teacher_dir, &dataset.catalog, &config.model, device)?;
            tracing::info!(
                temperature = d.temperature,
                alpha = d.alpha,
                "distilling from teacher {} ({})",
                t.version(),
                d.teacher_dir.display()
            );
            Some(t)
        }
        None => None,
    };

    // Fixed validation subset (the same every epoch and on resume).
    let mut vrng = StdRng::seed_from_u64(config.seed ^ 0x5eed);
    let valid: Vec<TestCase> = if dataset.valid.len() > config.valid_cases {
        sample(&mut vrng, dataset.valid.len(), config.valid_cases)
            .into_iter()
            .map(|i| dataset.valid[i].clone())
            .collect()
    } else {
        dataset.valid.clone()
    };

    let mut model = config.model.init(&ad);
    if let Some(initial) = initial_model {
        // Through a record: the weights move to the autodiff device as trainable parameters.
        model = model.try_load_record(initial.clone().into_record()).map_err(|e| {
            TrainError::Config(format!("the initial model does not fit the config: {e}"))
        })?;
    }
    let mut optim: ModuleOptimizer = AdamWConfig::new()
        .with_weight_decay(config.weight_decay)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(1.0)))
        .init();
    let mut state = CheckpointState {
        config: serde_json::to_value(config).map_err(|e| TrainError::Other(e.to_string()))?,
        dataset: dataset.name.clone(),
        epoch: 0,
        step: 0,
        best_score: f64::NEG_INFINITY,
        best_epoch: 0,
        bad_epochs: 0,
        history: Vec::new(),
        train_seconds: 0.0,
    };
    let mut best: Option<SessionRankModel> = None;
    if let Some(dir) = checkpoint_dir
        && let Some((s, m, o, b)) = resume(dir, &state, model.clone(), optim.clone(), &ad)?
    {
        tracing::info!(epoch = s.epoch, "resuming from checkpoint {}", dir.display());
        // The schedule and budget of this invocation win over the checkpoint's.
        state = CheckpointState { config: state.config.clone(), ..s };
        model = m;
        optim = o;
        best = b;
    }
    let resumed_seconds = state.train_seconds;
    let report = |state: &CheckpointState,
                  epoch: usize,
                  step: usize,
                  steps: usize,
                  loss: Option<f64>,
                  kd_loss: Option<f64>| {
        if let Some(f) = on_progress {
            let done = (epoch * steps_per_epoch + step) as f64 / run_steps.max(1) as f64;
            let budget = config.time_budget_s.map_or(0.0, |b| {
                (resumed_seconds + start.elapsed().as_secs_f64()) / (b.max(1) as f64)
            });
            f(&TrainProgress {
                epoch: epoch + 1,
                max_epochs: config.max_epochs,
                step,
                steps_per_epoch: steps,
                loss,
                kd_loss,
                last_epoch: state.history.last().cloned(),
                fraction: done.max(budget).min(1.0),
            });
        }
    };

    while state.epoch < config.max_epochs && state.bad_epochs < config.patience {
        let epoch_start = Instant::now();
        let epoch = state.epoch;
        ad.seed(config.seed.wrapping_add(epoch as u64 * 7919));
        let mut rng = StdRng::seed_from_u64(config.seed.wrapping_add(epoch as u64));
        let batches = length_bucketed_batches(&seqs, config.batch_size, &mut rng);
        let bar = progress_bar(batches.len() as u64, epoch + 1, config.max_epochs);
        let mut loss_sum = 0.0;
        let mut loss_samples = 0usize;
        let mut kd_sum = 0.0;
        let mut lr = 0.0;
        for (i, ids) in batches.iter().enumerate() {
            let batch = if config.negatives > 0 && config.negatives < encoder.n_items() {
                make_sampled_batch(
                    &seqs,
                    ids,
                    max_len,
                    encoder.n_items() + 1,
                    config.negatives,
                    &mut rng,
                    &ad,
                )
            } else {
                make_batch(&seqs, ids, max_len, &ad)
            };
            let features = drop_ids(&features_ad, config.id_dropout, &mut rng, &ad);
            let logits = batch_logits(&model, features, &batch);
            let ce = cross_entropy(logits.clone(), &batch, config.label_smoothing);
            let (loss, kd) = match (&teacher, &config.distill) {
                (Some(t), Some(d)) => {
                    let kd = kd_loss(logits, t.logits(&batch), d.temperature);
                    (ce * (1.0 - d.alpha) + kd.clone() * d.alpha, Some(kd))
                }
                _ => (ce, None),
            };
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            lr = learning_rate(config, state.step, total_steps);
            model = optim.step(lr, model, grads);
            // Reading the loss back forces a device sync; every 20 steps is enough for the
            // bar and for catching a divergence early.
            if i % 20 == 0 || i + 1 == batches.len() {
                let v = loss.into_scalar::<f32>() as f64;
                if !v.is_finite() {
                    return Err(TrainError::Diverged(v as f32, state.step));
                }
                let kd = kd.map(|k| k.into_scalar::<f32>() as f64);
                loss_sum += v;
                kd_sum += kd.unwrap_or(0.0);
                loss_samples += 1;
                let kd_note = kd.map(|k| format!(", kd {k:.4}")).unwrap_or_default();
                bar.set_message(format!("loss {v:.4}{kd_note}"));
                report(&state, epoch, i + 1, batches.len(), Some(v), kd);
                if bar.is_hidden() && i % 200 == 0 {
                    tracing::info!(
                        "epoch {} step {}/{}: loss {v:.4}{kd_note}, {:.1} steps/s",
                        epoch + 1,
                        i,
                        batches.len(),
                        (i + 1) as f64 / epoch_start.elapsed().as_secs_f64()
                    );
                }
            }
            state.step += 1;
            bar.inc(1);
        }
        bar.finish_and_clear();
        let valid_model = model.valid();
        let metrics =
            evaluate_model(&valid_model, encoder, &valid, config.exclude_history, &device.clone());
        let score = metrics.mrr_at_20;
        let log = EpochLog {
            epoch: epoch + 1,
            steps: batches.len(),
            // Mean of the losses read back (every 20th step): a sample, not every step.
            train_loss: loss_sum / loss_samples.max(1) as f64,
            train_kd_loss: teacher.as_ref().map(|_| kd_sum / loss_samples.max(1) as f64),
            valid: metrics.clone(),
            lr,
            seconds: epoch_start.elapsed().as_secs_f64(),
        };
        let kd_note = log.train_kd_loss.map(|k| format!(" (kd {k:.4})")).unwrap_or_default();
        tracing::info!(
            "epoch {}: loss {:.4}{kd_note}, valid P@20 {:.2} MRR@20 {:.2} HR@10 {:.4} NDCG@10 {:.4} ({:.0} s)",
            log.epoch,
            log.train_loss,
            metrics.p_at_20,
            metrics.mrr_at_20,
            metrics.hr_at_10,
            metrics.ndcg_at_10,
            log.seconds
        );
        state.history.push(log);
        if score > state.best_score {
            state.best_score = score;
            state.best_epoch = epoch + 1;
            state.bad_epochs = 0;
            best = Some(valid_model);
        } else {
            state.bad_epochs += 1;
        }
        state.epoch += 1;
        state.train_seconds = resumed_seconds + start.elapsed().as_secs_f64();
        report(&state, epoch, batches.len(), batches.len(), None, None);
        if let Some(dir) = checkpoint_dir {
            save_checkpoint(dir, &state, &model, &optim, best.as_ref())?;
        }
        if let Some(budget) = config.time_budget_s
            && state.train_seconds >= budget as f64
        {
            tracing::info!("time budget of {budget} s reached after epoch {}", epoch + 1);
            break;
        }
    }
    let model = best.unwrap_or_else(|| model.valid());
    let train_seconds = resumed_seconds.max(state.train_seconds);
    Ok(TrainOutcome {
        model,
        best_epoch: state.best_epoch,
        targets_per_second: (n_targets * state.history.len()) as f64 / train_seconds.max(1e-9),
        history: state.history,
        train_seconds,
    })
}

fn progress_bar(len: u64, epoch: usize, epochs: usize) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg} (eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar.set_prefix(format!("epoch {epoch}/{epochs}"));
    bar
}

fn save_checkpoint(
    dir: &Path,
    state: &CheckpointState,
    model: &SessionRankModel,
    optim: &ModuleOptimizer,
    best: Option<&SessionRankModel>,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(TrainError::io(dir))?;
    let rec = |e: burn::store::RecordError| TrainError::Checkpoint {
        path: dir.display().to_string(),
        message: e.to_string(),
    };
    // Write everything under temporary names, then rename: a kill mid-save leaves the
    // previous checkpoint intact.
    let tmp = |name: &str| dir.join(format!("{name}.tmp"));
    model.clone().into_record().save(tmp(MODEL)).map_err(rec)?;
    optim.save(tmp(OPTIM)).map_err(rec)?;
    if let Some(b) = best {
        b.clone().into_record().save(tmp(BEST)).map_err(rec)?;
    }
    let json = serde_json::to_vec_pretty(state).map_err(|e| TrainError::Other(e.to_string()))?;
    std::fs::write(tmp(STATE), json).map_err(TrainError::io(&tmp(STATE)))?;
    for name in [MODEL, OPTIM, BEST, STATE] {
        let from = tmp(name);
        if from.exists() {
            std::fs::rename(&from, dir.join(name)).map_err(TrainError::io(&from))?;
        }
    }
    Ok(())
}

type Resumed = (CheckpointState, SessionRankModel, ModuleOptimizer, Option<SessionRankModel>);

fn resume(
    dir: &Path,
    fresh: &CheckpointState,
    model: SessionRankModel,
    optim: ModuleOptimizer,
    device: &Device,
) -> Result<Option<Resumed>> {
    let state_path = dir.join(STATE);
    if !state_path.exists() {
        return Ok(None);
    }
    let err = |m: String| TrainError::Checkpoint { path: dir.display().to_string(), message: m };
    let bytes = std::fs::read(&state_path).map_err(TrainError::io(&state_path))?;
    let state: CheckpointState = serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))?;
    // A run may be resumed for more epochs, with another time budget or patience (how long
    // it goes on): anything else (model, optimiser, schedule, data) must match.
    let comparable = |v: &serde_json::Value| {
        let mut v = v.clone();
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
    };
    if comparable(&state.config) != comparable(&fresh.config) || state.dataset != fresh.dataset {
        return Err(err("was written by a run with another config or dataset; use another --checkpoint-dir or delete it".into()));
    }
    let load = |p: PathBuf| burn::store::ModuleRecord::load(&p).map_err(|e| err(e.to_string()));
    let model = model.try_load_record(load(dir.join(MODEL))?).map_err(|e| err(e.to_string()))?;
    let optim = optim.load(dir.join(OPTIM)).map_err(|e| err(e.to_string()))?;
    let best = if dir.join(BEST).exists() {
        let m =
            model.valid().try_load_record(load(dir.join(BEST))?).map_err(|e| err(e.to_string()))?;
        Some(m)
    } else {
        None
    };
    let _ = device;
    Ok(Some((state, model, optim, best)))
}
