use thiserror::Error;

/// Errors of the training pipeline.
#[derive(Debug, Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] sessionrank_data::DataError),
    #[error(transparent)]
    Core(#[from] sessionrank_core::CoreError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint exists but does not belong to this run (other config or dataset).
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: String, message: String },
    #[error("training diverged: loss is {0} at step {1}")]
    Diverged(f32, usize),
    /// A distillation teacher that cannot guide this student: unreadable bundle, another
    /// item index, or a shorter context than the student's.
    #[error("teacher {path}: {message}")]
    Teacher { path: String, message: String },
    #[error("invalid training config: {0}")]
    Config(String),
    #[error("{0}")]
    Other(String),
}

impl TrainError {
    pub fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io { path: path.display().to_string(), source }
    }
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;
