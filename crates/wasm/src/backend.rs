//! Which device computes the scores, and what happens when it fails.
//!
//! The CPU engine (burn `flex`) always exists: the page gets it first and every failure falls
//! back to it. The WebGPU artefact (`--features webgpu`, [`crate::gpu`]) may add a second
//! engine, built from the same bundle on the browser's GPU; a warm-up race decides which one
//! scores, because at this model size the CPU often wins (one readback alone costs ~0.5 ms in
//! Chrome and ~100 ms in Firefox). A WebGPU failure at run time (device lost, failed readback)
//! drops the GPU engine for good and the same call is scored again on the CPU. The session
//! lives in the `Reranker`, not here, so a fallback never touches it.
//!
//! ```text
//!  options.backend  "cpu"   ─► CPU engine only
//!                   "auto"  ─► CPU engine now; WebGPU build + adapter: race, keep the faster
//!                   "webgpu"─► WebGPU engine, or a `device` error (no adapter, CPU-only build)
//! ```

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use burn::tensor::Device;
use sessionrank_core::reranker::PendingRanking;
use sessionrank_core::{CoreError, ModelBundle, Reranker as Engine};
use wasm_bindgen::prelude::*;

use crate::choice::{Backend, Choice, Warmup};
use crate::error::{Error, ErrorCode, Result};
use crate::js::to_js;
use crate::score::read_back;

/// The engines of one `Reranker`: the CPU one always, a WebGPU one while it is chosen and
/// healthy.
pub struct Engines {
    cpu: Rc<Engine>,
    gpu: RefCell<Option<Rc<Engine>>>,
    report: RefCell<Warmup>,
    /// The bundle and the choice still to make (WebGPU build, `auto`/`webgpu`), kept until
    /// the GPU engine is built from it.
    pending: RefCell<Option<(ModelBundle, Choice)>>,
    /// The choice running in the background (`fromBytes` is synchronous; `ready()` awaits it).
    choosing: RefCell<Option<js_sys::Promise>>,
    /// Why WebGPU was dropped at run time, put in the `reason` of the next result once.
    fallback_note: RefCell<Option<String>>,
    /// Test hook: the next WebGPU readback fails like one on a lost device.
    fail_next_gpu_call: Cell<bool>,
}

impl Engines {
    /// The CPU engine, and the choice to make. In the CPU-only build `"webgpu"` is a `device`
    /// error and `"auto"` is the CPU.
    pub fn new(bundle: &ModelBundle, choice: Choice) -> Result<Rc<Self>> {
        let cpu = Rc::new(Engine::from_bundle(bundle, &Device::flex())?);
        let (report, pending) = match choice {
            Choice::Cpu => (Warmup::cpu("backend \"cpu\" was asked for"), None),
            _ if !cfg!(feature = "webgpu") => {
                if choice == Choice::WebGpu {
                    return Err(Error::new(
                        ErrorCode::Device,
                        "this build of sessionrank has no WebGPU backend; import sessionrank/webgpu (sessionrank_webgpu.js)",
                    ));
                }
                (Warmup::cpu("this build has no WebGPU backend (sessionrank_webgpu.js has)"), None)
            }
            _ => {
                (Warmup::cpu("the backend choice has not run yet"), Some((bundle.clone(), choice)))
            }
        };
        Ok(Rc::new(Self {
            cpu,
            gpu: RefCell::new(None),
            report: RefCell::new(report),
            pending: RefCell::new(pending),
            choosing: RefCell::new(None),
            fallback_note: RefCell::new(None),
            fail_next_gpu_call: Cell::new(false),
        }))
    }

    /// Make the backend choice now (`load`). A `"webgpu"` choice that cannot be honoured is
    /// a `device` error; `"auto"` never fails (it keeps the CPU and says why).
    pub async fn choose(&self) -> Result<Warmup> {
        let pending = self.pending.borrow_mut().take();
        if let Some((bundle, choice)) = pending {
            let chosen = choose_gpu(&self.cpu, &bundle, choice).await;
            let (gpu, report) = chosen?;
            *self.gpu.borrow_mut() = gpu;
            *self.report.borrow_mut() = report;
        }
        Ok(self.report.borrow().clone())
    }

    /// Start the choice without waiting (`fromBytes`): scores come from the CPU until it ends.
    pub fn choose_in_background(self: &Rc<Self>) {
        if self.pending.borrow().is_none() {
            return;
        }
        let this = Rc::clone(self);
        let promise = wasm_bindgen_futures::future_to_promise(async move {
            let report = this.choose().await?;
            Ok(to_js(&report)?)
        });
        *self.choosing.borrow_mut() = Some(promise);
    }

    /// The choice's outcome, once made.
    pub async fn ready(&self) -> Result<JsValue, JsValue> {
        let running = self.choosing.borrow().clone();
        match running {
            Some(p) => wasm_bindgen_futures::JsFuture::from(p).await,
            None => Ok(to_js(&self.choose().await?)?),
        }
    }

    /// The CPU engine (always there: manifest, model version).
    pub fn cpu(&self) -> &Engine {
        &self.cpu
    }

    /// The engine that scores now.
    pub fn current(&self) -> (Rc<Engine>, Backend) {
        match &*self.gpu.borrow() {
            Some(gpu) => (Rc::clone(gpu), Backend::WebGpu),
            None => (Rc::clone(&self.cpu), Backend::Cpu),
        }
    }

    /// What the choice found (and, after a run-time failure, why WebGPU was dropped).
    pub fn report(&self) -> Warmup {
        self.report.borrow().clone()
    }

    /// Read a prepared call back from `backend` (the test hook can make a WebGPU one fail).
    pub async fn read_back(
        &self,
        backend: Backend,
        p: &PendingRanking,
    ) -> Result<(Vec<f32>, Vec<f32>), CoreError> {
        if backend == Backend::WebGpu && self.fail_next_gpu_call.replace(false) {
            return Err(CoreError::Device("simulated WebGPU device loss (test hook)".into()));
        }
        read_back(p).await
    }

    /// A call on `backend` failed with `e`. Returns true when it was WebGPU: the GPU engine is
    /// dropped for good and the caller runs the call again on the CPU.
    pub fn fall_back(&self, backend: Backend, e: &CoreError) -> bool {
        if backend != Backend::WebGpu || self.gpu.borrow_mut().take().is_none() {
            return false;
        }
        let why = format!("WebGPU failed ({e}); scores come from the CPU from now on");
        let mut report = self.report.borrow_mut();
        report.backend = Backend::Cpu.as_str();
        report.reason = Some(why.clone());
        *self.fallback_note.borrow_mut() = Some(why);
        true
    }

    /// The run-time fallback's reason, once (for the `reason` of the result it happened in).
    pub fn take_fallback_note(&self) -> Option<String> {
        self.fallback_note.borrow_mut().take()
    }

    /// Test hook: make the next WebGPU readback fail as on a lost device.
    #[doc(hidden)]
    pub fn fail_next_gpu_call(&self) {
        self.fail_next_gpu_call.set(true);
    }
}

/// The WebGPU engine and the race (WebGPU build).
#[cfg(feature = "webgpu")]
async fn choose_gpu(
    cpu: &Engine,
    bundle: &ModelBundle,
    choice: Choice,
) -> Result<(Option<Rc<Engine>>, Warmup)> {
    crate::gpu::choose(cpu, bundle, choice).await
}

/// The CPU-only build never has a pending choice ([`Engines::new`]).
#[cfg(not(feature = "webgpu"))]
async fn choose_gpu(
    _: &Engine,
    _: &ModelBundle,
    _: Choice,
) -> Result<(Option<Rc<Engine>>, Warmup)> {
    Ok((None, Warmup::cpu("this build has no WebGPU backend (sessionrank_webgpu.js has)")))
}
