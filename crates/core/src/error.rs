use thiserror::Error;

/// Everything that can go wrong in the engine. Each variant names what was wrong with the
/// input so a caller (HTTP handler, JS binding) can report it precisely.
#[derive(Debug, Error)]
pub enum CoreError {
    /// The tokenizer could not be trained, parsed or applied.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A bundle file is not valid JSON / not the expected shape.
    #[error("{file}: {message}")]
    InvalidFile { file: String, message: String },
    /// A bundle file's sha256 does not match the manifest.
    #[error("{file}: sha256 mismatch (manifest {expected}, file {actual})")]
    ChecksumMismatch { file: String, expected: String, actual: String },
    /// A file the manifest names is absent.
    #[error("bundle is missing file {0}")]
    MissingFile(String),
    /// The bundle was written by an incompatible format version.
    #[error(
        "bundle format version {found} is not supported (this build reads version {supported})"
    )]
    UnsupportedFormat { found: u32, supported: u32 },
    /// The weights do not fit the architecture the manifest describes.
    #[error("weights do not match the model config: {0}")]
    Weights(String),
    /// The model configuration is unusable.
    #[error("invalid model config: {0}")]
    InvalidConfig(String),
    /// Bad data from a caller: names the field at fault.
    #[error("{field}: {message}")]
    InvalidInput { field: String, message: String },
    /// Business rules that are invalid or cannot be met for this list (two pins on one slot,
    /// a pin past the end, pinned items over the category cap, a weight out of range): names
    /// the rule as the JSON spells it (`rules.pins.<id>`).
    #[error("{field}: {message}")]
    InvalidRules { field: String, message: String },
    /// Reading a tensor back from the device failed.
    #[error("device: {0}")]
    Device(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl CoreError {
    pub fn input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidInput { field: field.into(), message: message.into() }
    }

    pub fn rule(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidRules { field: field.into(), message: message.into() }
    }
}

pub type Result<T, E = CoreError> = std::result::Result<T, E>;
