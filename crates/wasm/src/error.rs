//! Errors as JavaScript sees them: real `Error` objects with a stable `code`.
//!
//! Every error that outside data can cause (the network, the bundle files, the arguments of a
//! call) reaches JavaScript as an `Error` whose `name` is `"SessionrankError"` and whose `code`
//! is one of [`ErrorCode`]; some carry more properties (`field`, `file`, `status`, `url`). A
//! storefront can therefore write `catch (e) { if (e.code === "invalid_input") … }`.

use sessionrank_core::CoreError;
use wasm_bindgen::prelude::*;

/// `Error.name` of every error this package throws.
pub const ERROR_NAME: &str = "SessionrankError";

/// The `code` property of a thrown error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// `fetch` itself failed (offline, DNS, CORS, connection refused). Has `url`.
    Network,
    /// The server answered with a status other than 2xx (e.g. 404). Has `url`, `status`.
    HttpStatus,
    /// A file's sha256 differs from the manifest (truncated or tampered). Has `file`.
    ChecksumMismatch,
    /// The manifest was written by another bundle format version.
    UnsupportedFormat,
    /// The manifest lacks a required file, or `fromBytes` was not given one. Has `file`.
    MissingFile,
    /// A bundle file is not the JSON it should be. Has `file`.
    InvalidFile,
    /// `weights.bpk` does not decode into the architecture the manifest describes.
    Weights,
    /// The manifest's model config cannot build a model.
    InvalidConfig,
    /// The tokenizer could not be read or applied.
    Tokenizer,
    /// A call's argument is unusable (empty, oversized or duplicate candidates, NaN price,
    /// unknown event kind …). Has `field`, e.g. `"candidates[3].content.price"`.
    InvalidInput,
    /// The rules are invalid or cannot be met for this list (two pins on one slot, a pin past
    /// the end of the list, pinned items over the category cap, a weight outside [0, 1], an
    /// unknown rule). Has `field`, e.g. `"rules.pins.sku-7"`.
    InvalidRules,
    /// The model produced no usable result on this device.
    Device,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Network => "network",
            Self::HttpStatus => "http_status",
            Self::ChecksumMismatch => "checksum_mismatch",
            Self::UnsupportedFormat => "unsupported_format",
            Self::MissingFile => "missing_file",
            Self::InvalidFile => "invalid_file",
            Self::Weights => "weights",
            Self::InvalidConfig => "invalid_config",
            Self::Tokenizer => "tokenizer",
            Self::InvalidInput => "invalid_input",
            Self::InvalidRules => "invalid_rules",
            Self::Device => "device",
        }
    }
}

/// A `SessionrankError` under construction.
#[derive(Debug)]
pub struct Error {
    code: ErrorCode,
    message: String,
    extra: Vec<(&'static str, JsValue)>,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), extra: Vec::new() }
    }

    pub fn input(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        let field = field.into();
        Self::new(ErrorCode::InvalidInput, format!("{field}: {message}")).with("field", field)
    }

    pub fn with(mut self, key: &'static str, value: impl Into<JsValue>) -> Self {
        self.extra.push((key, value.into()));
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JavaScript `Error` object.
    pub fn into_js(self) -> JsValue {
        let e = js_sys::Error::new(&self.message);
        e.set_name(ERROR_NAME);
        // Setting a property on a fresh Error cannot fail; ignore the impossible case.
        let _ = js_sys::Reflect::set(&e, &"code".into(), &self.code.as_str().into());
        for (k, v) in &self.extra {
            let _ = js_sys::Reflect::set(&e, &(*k).into(), v);
        }
        e.into()
    }
}

impl From<Error> for JsValue {
    fn from(e: Error) -> Self {
        e.into_js()
    }
}

impl From<CoreError> for Error {
    fn from(e: CoreError) -> Self {
        let message = e.to_string();
        match e {
            CoreError::Tokenizer(_) => Self::new(ErrorCode::Tokenizer, message),
            CoreError::InvalidFile { file, .. } => {
                Self::new(ErrorCode::InvalidFile, message).with("file", file)
            }
            CoreError::ChecksumMismatch { file, .. } => {
                Self::new(ErrorCode::ChecksumMismatch, message).with("file", file)
            }
            CoreError::MissingFile(file) => {
                Self::new(ErrorCode::MissingFile, message).with("file", file)
            }
            CoreError::UnsupportedFormat { found, supported } => {
                Self::new(ErrorCode::UnsupportedFormat, message)
                    .with("found", found)
                    .with("supported", supported)
            }
            CoreError::Weights(_) => Self::new(ErrorCode::Weights, message),
            CoreError::InvalidConfig(_) => Self::new(ErrorCode::InvalidConfig, message),
            CoreError::InvalidInput { field, .. } => {
                Self::new(ErrorCode::InvalidInput, message).with("field", field)
            }
            CoreError::InvalidRules { field, .. } => {
                Self::new(ErrorCode::InvalidRules, message).with("field", field)
            }
            CoreError::Device(_) => Self::new(ErrorCode::Device, message),
            // No file system in the browser; kept total for future variants.
            other => Self::new(ErrorCode::Device, other.to_string()),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
