//! Validation-based early stopping: the run keeps the model of its best epoch (validation
//! MRR@20) and stops after `patience` epochs in a row without a better one.

use serde::{Deserialize, Serialize};

/// Where a run stands against its best epoch (part of a checkpoint, so a resumed run stops
/// exactly where an uninterrupted one would).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopping {
    /// The best validation score so far; −∞ before the first epoch.
    pub best_score: f64,
    /// The epoch (1-based) that scored it; 0 before the first epoch.
    pub best_epoch: usize,
    /// Epochs since the best one.
    pub bad_epochs: usize,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        Self { best_score: f64::NEG_INFINITY, best_epoch: 0, bad_epochs: 0 }
    }
}

impl EarlyStopping {
    /// Record the validation score of `epoch` (1-based). True when it is a new best: the
    /// caller keeps this epoch's model.
    pub fn observe(&mut self, epoch: usize, score: f64) -> bool {
        if score > self.best_score {
            self.best_score = score;
            self.best_epoch = epoch;
            self.bad_epochs = 0;
            true
        } else {
            self.bad_epochs += 1;
            false
        }
    }

    /// True once `patience` epochs in a row brought no better score.
    pub fn should_stop(&self, patience: usize) -> bool {
        self.bad_epochs >= patience
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_epoch_and_stops_after_patience() {
        let mut s = EarlyStopping::default();
        assert!(!s.should_stop(2));
        assert!(s.observe(1, 0.5));
        assert!(!s.observe(2, 0.5), "a tie is no improvement");
        assert!(!s.should_stop(2));
        assert!(s.observe(3, 0.6));
        assert!(!s.observe(4, 0.1));
        assert!(!s.observe(5, 0.2));
        assert!(s.should_stop(2));
        assert_eq!((s.best_epoch, s.best_score), (3, 0.6));
    }
}
