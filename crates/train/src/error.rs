use thiserror::Error;

/// Errors of the training pipeline.
#[derive(Debug, Error)]
pub enum TrainError {
    /// Reading the dataset (an importer, a dataset file).
    #[error(transparent)]
    Data(#[from] sessionrank_data::DataError),
    /// The engine's side: the tokenizer, feature encoding, a model bundle.
    #[error(transparent)]
    Core(#[from] sessionrank_core::CoreError),
    /// Reading or writing a file (`path`) of a checkpoint, report or results file.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A value could not be converted to or from JSON (`what`: the training config, a
    /// checkpoint's state, the item index of a bundle).
    #[error("{what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// A checkpoint's weights or optimiser state (in the checkpoint directory `path`) could not
    /// be written, read or applied to this run's model.
    #[error("checkpoint {path}: {source}")]
    Record {
        path: String,
        #[source]
        source: burn::store::RecordError,
    },
    /// The caller asked the run to stop (`TrainOptions::cancel`), after `step` steps.
    #[error("training cancelled after {0} steps")]
    Cancelled(usize),
    /// A checkpoint exists but does not belong to this run (other config or dataset).
    #[error(
        "checkpoint {path}: was written by a run with another config or dataset; use another \
         --checkpoint-dir or delete it"
    )]
    CheckpointMismatch { path: String },
    /// The PyTorch copy of the weights (`model.safetensors`) could not be written.
    #[error("safetensors export: {0}")]
    Safetensors(#[source] burn_store::SafetensorsStoreError),
    /// The training loss became NaN or infinite (learning rate too high, broken input).
    #[error("training diverged: loss is {0} at step {1}")]
    Diverged(f32, usize),
    /// A distillation teacher that cannot guide this student: unreadable bundle, another
    /// item index, or a shorter context than the student's.
    #[error("teacher {path}: {message}")]
    Teacher { path: String, message: String },
    /// The wgpu device asked for did not initialise (no adapter, a driver panic, or a build
    /// without the `wgpu` feature).
    #[error("wgpu device: {reason}")]
    Device { reason: String },
    /// A device name other than `auto`, `flex` or `wgpu`.
    #[error("unknown device `{0}` (expected auto, flex or wgpu)")]
    UnknownDevice(String),
    /// Settings that cannot train: out-of-range values, a model that does not fit its weights,
    /// no training data.
    #[error("invalid training config: {0}")]
    Config(String),
}

impl TrainError {
    pub fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io { path: path.display().to_string(), source }
    }
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;
