//! sessionrank-train: turns real session logs into a model bundle.
//!
//! * [`batch`] — sessions → next-item training batches;
//! * [`trainer`] — the training loop (flex or wgpu, same code), checkpoints, early stopping;
//! * [`distill`] — a larger teacher bundle guides a small student (KD loss);
//! * [`warm`] — a trained model's weights carried over to a grown catalog (warm start);
//! * [`scorer`] — the model behind the evaluation protocols of `sessionrank-data`;
//! * [`export`] — the trained model → a versioned [`ModelBundle`](sessionrank_core::ModelBundle).

pub mod batch;
mod config;
pub mod device;
pub mod distill;
mod error;
pub mod export;
pub mod pipeline;
pub mod report;
pub mod results;
pub mod scorer;
pub mod trainer;
pub mod warm;

pub use config::TrainConfig;
pub use distill::{DistillConfig, Teacher};
pub use error::{Result, TrainError};
pub use scorer::ModelScorer;
pub use trainer::{EpochLog, TrainOptions, TrainOutcome, TrainProgress, train, train_with};
