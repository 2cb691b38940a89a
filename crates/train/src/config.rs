use burn::config::Config;
use sessionrank_model::ModelConfig;

use crate::distill::DistillConfig;

/// Everything that defines a training run. Saved next to checkpoints, so a resumed run can
/// check it continues the same experiment.
///
/// Defaults are the ones below; the defaults for a dataset are [`TrainConfig::preset`]
/// ([`crate::presets`]): the model shape and `exclude_history` follow the dataset's kind and
/// size, every other setting keeps its default here.
#[derive(Config, Debug)]
pub struct TrainConfig {
    pub model: ModelConfig,
    /// Sessions per step.
    #[config(default = 128)]
    pub batch_size: usize,
    #[config(default = 30)]
    pub max_epochs: usize,
    /// Peak learning rate (after warm-up).
    #[config(default = 1e-3)]
    pub lr: f64,
    #[config(default = 0.05)]
    pub weight_decay: f32,
    /// Linear warm-up steps, then cosine decay to 5% of the peak over `schedule_epochs`.
    #[config(default = 300)]
    pub warmup_steps: usize,
    /// Length of the cosine schedule in epochs (default: `max_epochs`). Longer than
    /// `max_epochs`, the run stops while the rate is still high: small datasets such as Amazon
    /// Beauty learn far more in 14 epochs of a 40-epoch schedule than in a 14-epoch one,
    /// whose rate has decayed before the model leaves its popularity plateau.
    #[config(default = "None")]
    pub schedule_epochs: Option<usize>,
    /// Stop after this many epochs without a better validation score.
    #[config(default = 2)]
    pub patience: usize,
    #[config(default = 42)]
    pub seed: u64,
    /// Share of item ids replaced by "unknown" (id 0) in each step, so the content tower
    /// learns to stand on its own for cold items. 0 disables it.
    #[config(default = 0.0)]
    pub id_dropout: f64,
    /// Validation cases used for early stopping (a fixed random subset, for speed).
    #[config(default = 20000)]
    pub valid_cases: usize,
    /// Stop training (after the current epoch's validation) once this many seconds passed.
    #[config(default = "None")]
    pub time_budget_s: Option<u64>,
    /// Exclude items already in the session from full-ranking validation (S3-Rec protocol);
    /// the presets set it for user histories ([`crate::DatasetProfile::exclude_history`]).
    #[config(default = false)]
    pub exclude_history: bool,
    /// Sampled softmax: negatives drawn per step (shared by the batch); 0 = full softmax
    /// over the whole catalog.
    #[config(default = 0)]
    pub negatives: usize,
    /// Label smoothing of the cross-entropy.
    #[config(default = 0.0)]
    pub label_smoothing: f64,
    /// Threads a step runs on. The flex backend spreads only its large matrix products over
    /// the cores, so a plain step keeps ~1 of 2 cores busy. With more than one thread the
    /// batch is cut into that many parts (by sessions): their forward passes run one after
    /// another, so the dropout and sampling draws keep one order (same seed, same numbers),
    /// and their backward passes — about two thirds of a step — run at once; the gradients
    /// are summed, each part weighted by its share of the batch's targets, which is the whole
    /// batch's gradient. 0 = one per core (at most 4); 1 = the single-pass step (the
    /// default: on the Diginetica slice two threads trained no faster yet, 1,829 vs 1,909
    /// targets/s, so the published runs keep the plain step).
    #[config(default = 1)]
    pub threads: usize,
    /// Learn from a teacher bundle as well as from the next item (knowledge distillation).
    #[config(default = "None")]
    pub distill: Option<DistillConfig>,
}
