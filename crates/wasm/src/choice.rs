//! The backend vocabulary: what the page asked for (`options.backend`), the device a result
//! was computed on, and what the choice between them found. Shared by the engines
//! ([`crate::backend`]) and the WebGPU race ([`crate::gpu`]).

use serde::Serialize;
use wasm_bindgen::JsValue;

use crate::error::{Error, Result};
use crate::js::describe;

/// `options.backend` of `load` / `fromBytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Choice {
    /// WebGPU where this build has it, an adapter exists and the warm-up race says it is
    /// faster; the CPU otherwise (the default).
    #[default]
    Auto,
    /// The CPU, without looking for a GPU.
    Cpu,
    /// WebGPU or an error: for tests and for pages that measured their own users.
    WebGpu,
}

impl Choice {
    /// Read `options.backend` (absent: `"auto"`).
    pub fn parse(options: &JsValue) -> Result<Self> {
        if options.is_undefined() || options.is_null() {
            return Ok(Self::Auto);
        }
        let v = js_sys::Reflect::get(options, &"backend".into())
            .map_err(|e| Error::input("options", describe(&e)))?;
        match v.as_string().as_deref() {
            None if v.is_undefined() || v.is_null() => Ok(Self::Auto),
            Some("auto") => Ok(Self::Auto),
            Some("cpu") => Ok(Self::Cpu),
            Some("webgpu") => Ok(Self::WebGpu),
            _ => Err(Error::input("options.backend", "must be \"auto\", \"cpu\" or \"webgpu\"")),
        }
    }
}

/// The device a result was computed on (`backend` of results and of the `Reranker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Cpu,
    WebGpu,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::WebGpu => "webgpu",
        }
    }
}

/// What the backend choice found (JS: `reranker.warmup`, `await reranker.ready()`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Warmup {
    /// The backend that scores.
    pub backend: &'static str,
    /// Timed calls per backend (after one untimed call that compiles shaders / fills caches).
    pub calls: usize,
    /// Median wall time of one warm-up call on the CPU, when measured.
    pub cpu_ms: Option<f64>,
    /// The same on WebGPU, when measured.
    pub webgpu_ms: Option<f64>,
    /// Why WebGPU does not score, when it does not (no adapter, slower, failed, not asked).
    pub reason: Option<String>,
}

impl Warmup {
    pub fn cpu(reason: impl Into<String>) -> Self {
        Self {
            backend: Backend::Cpu.as_str(),
            calls: 0,
            cpu_ms: None,
            webgpu_ms: None,
            reason: Some(reason.into()),
        }
    }
}
