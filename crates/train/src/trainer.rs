//! The training loop: full-softmax next-item cross-entropy at every session position,
//! AdamW with warm-up + cosine decay, validation-based early stopping, checkpoints that a
//! killed run resumes from. The same code runs on `Device::flex()` and `Device::wgpu(..)`.
//! With `config.distill`, a teacher bundle adds a KD term to the loss (see [`crate::distill`]).
//!
//! [`train_with`] is the loop; its parts are modules of their own: the losses
//! ([`crate::loss`]), the learning-rate schedule ([`crate::schedule`]), checkpoints
//! (`checkpoint.rs`), early stopping ([`crate::early_stopping`]) and progress reports
//! ([`crate::progress`]).

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::index::sample;
use sessionrank_core::features::{EncodedEvent, FeatureEncoder};
use sessionrank_data::eval::evaluate_full;
use sessionrank_data::{Dataset, RankingMetrics, TestCase};
use sessionrank_model::{ItemFeatures, SessionRankModel};

use crate::batch::{
    length_bucketed_batches, make_batch, make_sampled_batch, training_sequences,
    training_session_indices,
};
use crate::checkpoint::{self, CheckpointState, RunState};
use crate::distill::{KnnQuery, Teacher};
use crate::features::drop_ids;
use crate::loss::kd_loss;
use crate::progress::{self, Progress, READ_EVERY};
use crate::schedule::Schedule;
use crate::{ModelScorer, Result, TrainConfig, TrainError};

// The step's pieces, where callers have always found them.
pub use crate::features::{catalog_features, select_rows};
pub use crate::loss::{batch_logits, batch_loss, cross_entropy};
pub use crate::progress::{EpochLog, TrainProgress};
pub use crate::schedule::learning_rate;

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
    /// Checked before every step: once it is `true` the run ends with
    /// [`TrainError::Cancelled`] (a server shutting down does not wait for an epoch).
    pub cancel: Option<&'a std::sync::atomic::AtomicBool>,
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
///
/// Runs epochs until `max_epochs`, early stopping or the time budget ends the run; each epoch
/// trains, validates, keeps the best model and writes a checkpoint. Same config and seed →
/// same numbers, resumed or not.
pub fn train_with(
    dataset: &Dataset,
    encoder: &FeatureEncoder,
    config: &TrainConfig,
    device: &Device,
    options: TrainOptions<'_>,
) -> Result<TrainOutcome> {
    let TrainOptions { checkpoint_dir, initial_model, on_progress, cancel } = options;
    let start = Instant::now();
    let ad = device.clone().autodiff();
    ad.seed(config.seed);
    let seqs = training_sequences(&dataset.train, config.model.max_len);
    if seqs.is_empty() {
        return Err(TrainError::Config("no training session has two or more events".into()));
    }
    let n_targets: usize = seqs.iter().map(|s| s.len() - 1).sum();
    // The order matters for the numbers: the teacher and the model draw their initial weights
    // from the device's RNG, seeded above.
    let steps = Steps {
        config,
        schedule: Schedule::new(config, seqs.len().div_ceil(config.batch_size)),
        seqs: &seqs,
        session_of: training_session_indices(&dataset.train),
        n_items: encoder.n_items(),
        features: catalog_features(encoder, &ad),
        teacher: match &config.distill {
            Some(d) => {
                Some(d.load_teacher(&dataset.catalog, &dataset.train, &config.model, device)?)
            }
            None => None,
        },
        device: ad.clone(),
        threads: step_threads(config.threads),
    };
    let valid = validation_cases(dataset, config);
    if let Some(teacher) = &steps.teacher {
        // The teacher on the student's validation cases: what the student can hope to keep.
        let m = evaluate_full(teacher, &valid, encoder.n_items(), 256, config.exclude_history);
        tracing::info!("teacher ({} model(s)) on validation: {m}", teacher.len());
    }
    let mut run = start_run(config, &dataset.name, &ad, initial_model, checkpoint_dir)?;
    let resumed_seconds = run.state.train_seconds;
    let progress = Progress::new(on_progress, config, steps.schedule, resumed_seconds, start);

    while run.state.epoch < config.max_epochs && !run.state.stopping.should_stop(config.patience) {
        let epoch_start = Instant::now();
        let epoch = run.state.epoch;
        let (trained, totals) = train_epoch(&steps, &progress, run, cancel)?;
        run = trained;
        let valid_model = run.model.valid();
        let metrics = evaluate_model(&valid_model, encoder, &valid, config.exclude_history, device);
        let log = totals.log(epoch, metrics, epoch_start.elapsed().as_secs_f64());
        progress::log_epoch(&log);
        let score = log.valid.mrr_at_20;
        run.state.history.push(log);
        if run.state.stopping.observe(epoch + 1, score) {
            run.best = Some(valid_model);
        }
        run.state.epoch += 1;
        run.state.train_seconds = progress.train_seconds();
        progress.report(run.state.history.last(), epoch, totals.steps, totals.steps, None, None);
        if let Some(dir) = checkpoint_dir {
            checkpoint::save(dir, &run)?;
        }
        if let Some(budget) = config.time_budget_s
            && run.state.train_seconds >= budget as f64
        {
            tracing::info!("time budget of {budget} s reached after epoch {}", epoch + 1);
            break;
        }
    }

    let train_seconds = resumed_seconds.max(run.state.train_seconds);
    Ok(TrainOutcome {
        model: run.best.unwrap_or_else(|| run.model.valid()),
        best_epoch: run.state.stopping.best_epoch,
        targets_per_second: (n_targets * run.state.history.len()) as f64 / train_seconds.max(1e-9),
        history: run.state.history,
        train_seconds,
    })
}

/// [`TrainConfig::threads`] resolved: 0 = one per core, at most 4.
fn step_threads(threads: usize) -> usize {
    match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
        n => n,
    }
}

/// What every step of a run reads.
struct Steps<'a> {
    config: &'a TrainConfig,
    schedule: Schedule,
    /// Training sequences (item rows), as [`training_sequences`] cut them.
    seqs: &'a [Vec<EncodedEvent>],
    /// The training session each of `seqs` came from (a hybrid teacher leaves it out of the
    /// kNN's neighbours).
    session_of: Vec<u32>,
    /// Catalog size (the table has one more row, the padding).
    n_items: usize,
    /// The catalog's feature table, on the autodiff device.
    features: ItemFeatures,
    teacher: Option<Teacher>,
    /// The autodiff device.
    device: Device,
    /// Parts a step is cut into ([`TrainConfig::threads`], resolved).
    threads: usize,
}

impl Steps<'_> {
    /// The loss of one batch (the sequences `ids`) at optimiser step `step`, and its KD term
    /// when a teacher guides the run. Draws the sampled negatives and the dropped ids from
    /// `rng`.
    fn loss(
        &self,
        model: &SessionRankModel,
        ids: &[usize],
        step: usize,
        rng: &mut StdRng,
    ) -> (Tensor<1>, Option<Tensor<1>>) {
        let config = self.config;
        let max_len = config.model.max_len;
        let batch = if config.negatives > 0 && config.negatives < self.n_items {
            let n_rows = self.n_items + 1;
            make_sampled_batch(self.seqs, ids, max_len, n_rows, config.negatives, rng, &self.device)
        } else {
            make_batch(self.seqs, ids, max_len, &self.device)
        };
        let features = drop_ids(&self.features, config.id_dropout, rng, &self.device);
        let logits = batch_logits(model, features, &batch);
        let ce = cross_entropy(logits.clone(), &batch, config.label_smoothing);
        match (&self.teacher, &config.distill) {
            (Some(t), Some(d)) => {
                let teacher = if t.uses_knn() {
                    let query = KnnQuery::of_batch(self.seqs, &self.session_of, ids, max_len);
                    t.hybrid_logits(&batch, &query)
                } else {
                    t.logits(&batch)
                };
                let kd = kd_loss(logits, teacher, d.temperature);
                let alpha = d.alpha_at(step, self.schedule.total_steps);
                (ce * (1.0 - alpha) + kd.clone() * alpha, Some(kd))
            }
            _ => (ce, None),
        }
    }

    /// One step's loss, KD term and gradients: one pass, or [`TrainConfig::threads`] parts
    /// whose forward passes run in order and whose backward passes run at once.
    fn step_grads(
        &self,
        model: &SessionRankModel,
        ids: &[usize],
        step: usize,
        rng: &mut StdRng,
    ) -> (Tensor<1>, Option<Tensor<1>>, GradientsParams) {
        let parts = self.threads.min(ids.len());
        if parts <= 1 {
            let (loss, kd) = self.loss(model, ids, step, rng);
            let grads = GradientsParams::from_grads(loss.backward(), model);
            return (loss, kd, grads);
        }
        let max_len = self.config.model.max_len;
        let targets = |part: &[usize]| -> usize {
            part.iter().map(|&i| (self.seqs[i].len() - 1).min(max_len)).sum()
        };
        let total = targets(ids).max(1) as f64;
        // Forward passes in order (the device's and `rng`'s draws keep one order), each part's
        // mean loss weighted by its share of the targets: the sum is the batch's mean loss.
        // Each part runs on a fork of the model (the same parameters and ids, new autodiff
        // leaves): graphs that share a leaf are kept under one lock by burn's autodiff, which
        // would run the backward passes one after another.
        let weighted: Vec<(SessionRankModel, Tensor<1>, Option<Tensor<1>>)> = ids
            .chunks(ids.len().div_ceil(parts))
            .map(|part| {
                let share = targets(part) as f64 / total;
                let replica = model.clone().fork(&self.device);
                let (loss, kd) = self.loss(&replica, part, step, rng);
                (replica, loss * share, kd.map(|k| k * share))
            })
            .collect();
        let all_grads = std::thread::scope(|scope| {
            let handles: Vec<_> = weighted
                .iter()
                .map(|(replica, loss, _)| {
                    scope.spawn(move || GradientsParams::from_grads(loss.backward(), replica))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                .collect::<Vec<_>>()
        });
        let mut sum = GradientsAccumulator::<SessionRankModel>::new();
        for grads in all_grads {
            sum.accumulate(model, grads);
        }
        let mut parts = weighted.into_iter().map(|(_, loss, kd)| (loss, kd));
        let (mut loss, mut kd) = parts.next().expect("at least two parts");
        for (l, k) in parts {
            loss = loss + l;
            kd = match (kd, k) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
        }
        (loss, kd, sum.grads())
    }
}

/// The validation cases of every epoch: a fixed sample of at most `valid_cases` (the same
/// every epoch and on resume).
fn validation_cases(dataset: &Dataset, config: &TrainConfig) -> Vec<TestCase> {
    let mut rng = StdRng::seed_from_u64(config.seed ^ 0x5eed);
    if dataset.valid.len() > config.valid_cases {
        sample(&mut rng, dataset.valid.len(), config.valid_cases)
            .into_iter()
            .map(|i| dataset.valid[i].clone())
            .collect()
    } else {
        dataset.valid.clone()
    }
}

/// A fresh run (from `initial` weights when given), or the one checkpointed in
/// `checkpoint_dir`.
fn start_run(
    config: &TrainConfig,
    dataset: &str,
    device: &Device,
    initial: Option<&SessionRankModel>,
    checkpoint_dir: Option<&Path>,
) -> Result<RunState> {
    let mut model = config.model.init(device);
    if let Some(initial) = initial {
        // Through a record: the weights move to the autodiff device as trainable parameters.
        model = model.try_load_record(initial.clone().into_record()).map_err(|e| {
            TrainError::Config(format!("the initial model does not fit the config: {e}"))
        })?;
    }
    let optim: ModuleOptimizer = AdamWConfig::new()
        .with_weight_decay(config.weight_decay)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(1.0)))
        .init();
    let state = CheckpointState::fresh(config, dataset)?;
    if let Some(dir) = checkpoint_dir
        && let Some(run) = checkpoint::resume(dir, &state, model.clone(), optim.clone())?
    {
        tracing::info!(epoch = run.state.epoch, "resuming from checkpoint {}", dir.display());
        return Ok(run);
    }
    Ok(RunState { state, model, optim, best: None })
}

/// One epoch of optimiser steps over the training sequences in length-bucketed batches.
/// Batches, negatives and dropped ids are drawn from RNGs seeded by `(seed, epoch)`, so a
/// resumed run draws exactly what an uninterrupted one would.
fn train_epoch(
    steps: &Steps<'_>,
    progress: &Progress<'_>,
    run: RunState,
    cancel: Option<&std::sync::atomic::AtomicBool>,
) -> Result<(RunState, EpochTotals)> {
    let RunState { mut state, mut model, mut optim, best } = run;
    let config = steps.config;
    let epoch = state.epoch;
    steps.device.seed(config.seed.wrapping_add(epoch as u64 * 7919));
    let mut rng = StdRng::seed_from_u64(config.seed.wrapping_add(epoch as u64));
    let batches = length_bucketed_batches(steps.seqs, config.batch_size, &mut rng);
    let bar = progress.epoch(epoch, batches.len());
    let mut totals = EpochTotals {
        steps: batches.len(),
        distilled: steps.teacher.is_some(),
        ..Default::default()
    };
    for (i, ids) in batches.iter().enumerate() {
        if cancel.is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed)) {
            return Err(TrainError::Cancelled(state.step));
        }
        let (loss, kd, grads) = steps.step_grads(&model, ids, state.step, &mut rng);
        totals.lr = steps.schedule.lr(state.step);
        model = optim.step(totals.lr, model, grads);
        if i.is_multiple_of(READ_EVERY) || i + 1 == batches.len() {
            let v = loss.into_scalar::<f32>() as f64;
            if !v.is_finite() {
                return Err(TrainError::Diverged(v as f32, state.step));
            }
            let kd = kd.map(|k| k.into_scalar::<f32>() as f64);
            totals.add(v, kd);
            bar.loss(i, v, kd);
            progress.report(state.history.last(), epoch, i + 1, batches.len(), Some(v), kd);
        }
        state.step += 1;
        bar.inc();
    }
    bar.finish();
    Ok((RunState { state, model, optim, best }, totals))
}

/// The losses read back during an epoch.
#[derive(Debug, Default)]
struct EpochTotals {
    steps: usize,
    distilled: bool,
    loss_sum: f64,
    kd_sum: f64,
    samples: usize,
    /// The learning rate of the epoch's last step.
    lr: f64,
}

impl EpochTotals {
    fn add(&mut self, loss: f64, kd: Option<f64>) {
        self.loss_sum += loss;
        self.kd_sum += kd.unwrap_or(0.0);
        self.samples += 1;
    }

    /// The record of 0-based `epoch`. The losses are the mean of those read back (every
    /// [`READ_EVERY`]th step): a sample, not every step.
    fn log(&self, epoch: usize, valid: RankingMetrics, seconds: f64) -> EpochLog {
        let n = self.samples.max(1) as f64;
        EpochLog {
            epoch: epoch + 1,
            steps: self.steps,
            train_loss: self.loss_sum / n,
            train_kd_loss: self.distilled.then(|| self.kd_sum / n),
            valid,
            lr: self.lr,
            seconds,
        }
    }
}
