//! How a run tells how it goes: the per-epoch record ([`EpochLog`], the training curve of the
//! report), the progress callback ([`TrainProgress`], for the server's job status), a progress
//! bar on a terminal and `tracing` lines where there is none.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use sessionrank_data::RankingMetrics;

use crate::TrainConfig;
use crate::schedule::Schedule;

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

/// Where a run stands, as reported to [`crate::TrainOptions::on_progress`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainProgress {
    /// The epoch being trained (1-based); after its validation, the epoch just finished.
    pub epoch: usize,
    pub max_epochs: usize,
    /// Steps done in this epoch.
    pub step: usize,
    pub steps_per_epoch: usize,
    /// The last training loss read back (every [`READ_EVERY`]th step).
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

/// Reading the loss back forces a device sync; every 20 steps is enough for the bar, the
/// callback and for catching a divergence early.
pub const READ_EVERY: usize = 20;

/// A terminal without a bar gets a `tracing` line every this many steps.
const LOG_EVERY: usize = 200;

/// The run's reporter: the callback, and what it needs to compute [`TrainProgress::fraction`].
pub(crate) struct Progress<'a> {
    on_progress: Option<&'a dyn Fn(&TrainProgress)>,
    max_epochs: usize,
    time_budget_s: Option<u64>,
    schedule: Schedule,
    /// Training seconds of the run before this invocation (a resumed checkpoint's).
    resumed_seconds: f64,
    start: Instant,
}

impl<'a> Progress<'a> {
    pub fn new(
        on_progress: Option<&'a dyn Fn(&TrainProgress)>,
        config: &TrainConfig,
        schedule: Schedule,
        resumed_seconds: f64,
        start: Instant,
    ) -> Self {
        Self {
            on_progress,
            max_epochs: config.max_epochs,
            time_budget_s: config.time_budget_s,
            schedule,
            resumed_seconds,
            start,
        }
    }

    /// Training seconds of the whole run so far, this invocation's and a checkpoint's.
    pub fn train_seconds(&self) -> f64 {
        self.resumed_seconds + self.start.elapsed().as_secs_f64()
    }

    /// Call the callback (if any): `step` of `steps` done in 0-based `epoch`.
    pub fn report(
        &self,
        last_epoch: Option<&EpochLog>,
        epoch: usize,
        step: usize,
        steps: usize,
        loss: Option<f64>,
        kd_loss: Option<f64>,
    ) {
        let Some(f) = self.on_progress else { return };
        let done = (epoch * self.schedule.steps_per_epoch + step) as f64
            / self.schedule.run_steps.max(1) as f64;
        let budget = self.time_budget_s.map_or(0.0, |b| self.train_seconds() / (b.max(1) as f64));
        f(&TrainProgress {
            epoch: epoch + 1,
            max_epochs: self.max_epochs,
            step,
            steps_per_epoch: steps,
            loss,
            kd_loss,
            last_epoch: last_epoch.cloned(),
            fraction: done.max(budget).min(1.0),
        });
    }

    /// The bar (or log lines) of 0-based `epoch`, `steps` long.
    pub fn epoch(&self, epoch: usize, steps: usize) -> EpochBar {
        EpochBar {
            bar: progress_bar(steps as u64, epoch + 1, self.max_epochs),
            epoch,
            steps,
            start: Instant::now(),
        }
    }
}

/// One epoch on the terminal.
pub(crate) struct EpochBar {
    bar: ProgressBar,
    epoch: usize,
    steps: usize,
    start: Instant,
}

impl EpochBar {
    /// A loss read back after 0-based step `i`.
    pub fn loss(&self, i: usize, loss: f64, kd: Option<f64>) {
        let kd_note = kd.map(|k| format!(", kd {k:.4}")).unwrap_or_default();
        self.bar.set_message(format!("loss {loss:.4}{kd_note}"));
        if self.bar.is_hidden() && i.is_multiple_of(LOG_EVERY) {
            tracing::info!(
                "epoch {} step {i}/{}: loss {loss:.4}{kd_note}, {:.1} steps/s",
                self.epoch + 1,
                self.steps,
                (i + 1) as f64 / self.start.elapsed().as_secs_f64()
            );
        }
    }

    pub fn inc(&self) {
        self.bar.inc(1);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The line of a finished epoch.
pub(crate) fn log_epoch(log: &EpochLog) {
    let m = &log.valid;
    let kd_note = log.train_kd_loss.map(|k| format!(" (kd {k:.4})")).unwrap_or_default();
    tracing::info!(
        "epoch {}: loss {:.4}{kd_note}, valid P@20 {:.2} MRR@20 {:.2} HR@10 {:.4} NDCG@10 {:.4} ({:.0} s)",
        log.epoch,
        log.train_loss,
        m.p_at_20,
        m.mrr_at_20,
        m.hr_at_10,
        m.ndcg_at_10,
        log.seconds
    );
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
