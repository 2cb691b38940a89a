//! The learning-rate schedule: linear warm-up, then cosine decay to 5% of the peak over
//! `schedule_epochs` (default `max_epochs`). The schedule may be longer than the run: a small
//! dataset (Amazon Beauty) stops after its epochs with the rate still high, which it needs to
//! leave its popularity plateau.

use crate::TrainConfig;

/// Share of the peak rate the cosine decays to.
const FLOOR: f64 = 0.05;

/// The steps of a run and the learning rate at each.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    peak_lr: f64,
    warmup_steps: usize,
    /// Optimiser steps of one epoch (batches).
    pub steps_per_epoch: usize,
    /// Steps the cosine decays over (`schedule_epochs` epochs).
    pub total_steps: usize,
    /// Steps this run trains at most (`max_epochs` epochs); progress counts these.
    pub run_steps: usize,
}

impl Schedule {
    pub fn new(config: &TrainConfig, steps_per_epoch: usize) -> Self {
        let schedule_epochs = config.schedule_epochs.unwrap_or(config.max_epochs).max(1);
        Self {
            peak_lr: config.lr,
            warmup_steps: config.warmup_steps,
            steps_per_epoch,
            total_steps: steps_per_epoch * schedule_epochs,
            run_steps: steps_per_epoch * config.max_epochs,
        }
    }

    /// Learning rate of optimiser step `step` (0-based, counted over the whole run).
    pub fn lr(&self, step: usize) -> f64 {
        rate(self.peak_lr, self.warmup_steps, step, self.total_steps)
    }
}

/// Learning rate at `step` of a `total_steps` schedule: linear warm-up, then cosine decay to
/// 5% of the peak.
pub fn learning_rate(config: &TrainConfig, step: usize, total_steps: usize) -> f64 {
    rate(config.lr, config.warmup_steps, step, total_steps)
}

fn rate(peak_lr: f64, warmup_steps: usize, step: usize, total_steps: usize) -> f64 {
    // Short runs (small datasets) warm up over at most a tenth of the run.
    let warmup = warmup_steps.min(total_steps / 10).max(1);
    let warm = ((step + 1) as f64 / warmup as f64).min(1.0);
    let progress = (step as f64 / total_steps.max(1) as f64).min(1.0);
    let cosine = FLOOR + (1.0 - FLOOR) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
    peak_lr * warm * cosine
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessionrank_model::ModelConfig;

    #[test]
    fn a_run_may_stop_early_in_a_longer_schedule() {
        let config =
            TrainConfig::new(ModelConfig::new()).with_max_epochs(2).with_schedule_epochs(Some(8));
        let s = Schedule::new(&config, 10);
        assert_eq!((s.total_steps, s.run_steps), (80, 20));
        assert_eq!(s.lr(5), learning_rate(&config, 5, 80));
        assert!(s.lr(19) > 0.8 * config.lr);
        assert!(s.lr(79) < 0.06 * config.lr);
    }
}
