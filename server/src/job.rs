//! The retraining job record: what the `jobs` table stores, `GET /admin/jobs/{id}` answers,
//! and startup recovery marks failed. Kept apart from [`crate::retrain`] (which runs a job) so
//! that recovery and the state read and fail jobs without depending on training.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::store::now_s;

/// Times a job is started (first run and take-overs) before it is given up: a job that
/// kills every instance that runs it (out of memory, say) must not take the fleet down.
pub const MAX_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Running,
    /// Finished; `published` says whether the new model went live.
    Succeeded,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

/// What `GET /admin/jobs/{id}` returns.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub state: JobState,
    /// `queued`, `loading`, `training` (training and evaluation), `publishing`, `done`.
    pub stage: String,
    /// 0..1: loading up to 0.1, training up to 0.8 (by steps, or by the time budget when that
    /// ends the run first), evaluation, publishing from 0.9.
    pub progress: f64,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    /// Whether the new model went live.
    pub published: bool,
    /// The version trained (published or not).
    pub model_version: Option<String>,
    /// The live version when the job started.
    pub previous_version: Option<String>,
    /// Why it was (not) published, or why it failed.
    pub reason: Option<String>,
    pub device: Option<String>,
    /// The instance running it (`instance` of `GET /admin/stats`); another one takes it over
    /// when this one stops renewing its lease.
    #[serde(default)]
    pub owner: Option<String>,
    /// Runs started: 1, and one more for each take-over after a lease expired.
    #[serde(default)]
    pub attempts: u32,
    /// The instance whose lease expired, when this run is a take-over.
    #[serde(default)]
    pub taken_over_from: Option<String>,
    /// Data sizes, training history, held-out metrics of both models, `warm_start`, and
    /// `training` (epoch, step, loss, latest validation metrics; updated while it trains).
    pub metrics: Value,
}

impl Job {
    /// A queued job with a fresh id.
    pub fn new(previous_version: Option<String>, owner: &str) -> Self {
        let now = now_s();
        Self {
            id: new_job_id(),
            state: JobState::Running,
            stage: "queued".into(),
            progress: 0.0,
            created_at: now,
            updated_at: now,
            finished_at: None,
            published: false,
            model_version: None,
            previous_version,
            reason: None,
            device: None,
            owner: Some(owner.to_string()),
            attempts: 1,
            taken_over_from: None,
            metrics: json!({}),
        }
    }
}

/// What a job is marked as when it was started [`MAX_ATTEMPTS`] times and each run's instance
/// stopped before finishing it.
pub fn abandoned(mut job: Job) -> Job {
    job.state = JobState::Failed;
    job.reason = Some(format!(
        "abandoned: {} runs stopped with their instance (the last on {}); the live model is \
         unchanged",
        job.attempts,
        job.owner.as_deref().unwrap_or("an unknown instance")
    ));
    job.finished_at = Some(now_s());
    job
}

/// What a job that died with its server is marked as.
pub fn interrupted(mut job: Job) -> Job {
    job.state = JobState::Failed;
    job.reason = Some(
        "interrupted: the server stopped while the job ran; the live model is unchanged".into(),
    );
    job.finished_at = Some(now_s());
    job
}

/// `job-<unix seconds>-<8 hex>`: sortable by start, unique (time, process and a counter hashed).
fn new_job_id() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let hash = sessionrank_core::bundle::sha256_hex(
        format!("{nanos}-{}-{n}", std::process::id()).as_bytes(),
    );
    format!("job-{}-{}", now_s(), &hash[..8])
}

/// The job running in this process and its progress, for `/metrics` and `/admin/stats`; and
/// whether the server is stopping (the running job's training then ends at its next step).
#[derive(Debug, Default)]
pub struct JobTracker {
    running: Mutex<Option<(String, f64)>>,
    /// Set once at shutdown.
    pub stopping: Arc<AtomicBool>,
    /// Set at shutdown, or when the running job's lease is lost: the training thread reads it
    /// before every step.
    pub cancel: Arc<AtomicBool>,
}

impl JobTracker {
    pub fn running(&self) -> Option<(String, f64)> {
        self.running.lock().ok().and_then(|j| j.clone())
    }

    pub fn set(&self, v: Option<(String, f64)>) {
        if let Ok(mut j) = self.running.lock() {
            *j = v;
        }
    }

    /// Ask the running job to stop (shutdown); no new job starts afterwards.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// A job starts here: clear a cancellation left by an earlier one (unless stopping).
    pub fn arm(&self) {
        self.cancel.store(self.is_stopping(), Ordering::SeqCst);
    }

    /// The running job's lease went to another instance: its training stops at the next step.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}
