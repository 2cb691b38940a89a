//! sessionrank-train: turns real session logs into a model bundle.
//!
//! * [`batch`] — sessions → next-item training batches;
//! * [`trainer`] — the training loop (flex or wgpu, same code), made of
//!   [`schedule`] (warm-up + cosine learning rate), `checkpoint` (atomic per-epoch saves,
//!   resume), [`early_stopping`] (best epoch, patience) and [`progress`] (callback, bar, log);
//! * [`loss`] — next-item cross-entropy and the distillation term; [`features`] — the item
//!   feature tables a step scores;
//! * [`controls`] — the business rules' trade-offs (accuracy against variety) on real lists;
//! * [`distill`] — a larger teacher bundle guides a small student (KD loss);
//! * [`warm`] — a trained model's weights carried over to a grown catalog (warm start);
//! * [`listwise`] — the list scorer (rank bias, list context) trained on retriever lists;
//! * [`scorer`] — the model behind the evaluation protocols of `sessionrank-data`;
//! * [`export`] — the trained model → a versioned [`ModelBundle`](sessionrank_core::ModelBundle);
//! * [`presets`] — default settings by the dataset's kind and size ([`TrainConfig::preset`]);
//! * [`device`] — the one device picker ([`device::pick`]) of the CLI and the server.

pub mod batch;
mod checkpoint;
mod config;
pub mod controls;
pub mod device;
pub mod distill;
pub mod early_stopping;
mod error;
pub mod export;
pub mod features;
pub mod listwise;
pub mod loss;
pub mod memory;
pub mod pipeline;
pub mod presets;
pub mod progress;
pub mod report;
pub mod results;
pub mod schedule;
pub mod scorer;
pub mod trainer;
pub mod warm;

pub use config::TrainConfig;
pub use device::{DeviceChoice, PickedDevice};
pub use distill::{DistillConfig, Teacher};
pub use error::{Result, TrainError};
pub use presets::{DatasetProfile, Preset};
pub use scorer::ModelScorer;
pub use trainer::{EpochLog, TrainOptions, TrainOutcome, TrainProgress, train, train_with};
