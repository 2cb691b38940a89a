//! Retraining: a background job that turns the stored catalog and events into a new model
//! and publishes it only if it is not worse than the live one.
//!
//! 1. **load** — the catalog (insertion order) and the events of the training window (the
//!    last `window_days`, at most `max_sessions` sessions of `max_session_events` events, the
//!    most recent; read in pages, see [`crate::store::Store::load_sessions`]), grouped into
//!    sessions in time order; sessions are ordered by their last event, the most recent
//!    `holdout_fraction` are
//!    held out as test prefixes (what the new and the live model are compared on) and the
//!    `holdout_fraction` before those as validation prefixes (early stopping);
//! 2. **train** — [`sessionrank_train::train_with`] with `[retrain.train]`, or the
//!    preset for the stored data ([`TrainConfig::preset`]), on the device
//!    [`pick`] chooses for `retrain.device` (`auto`: a
//!    hardware GPU when one initialises, else the CPU);
//! 3. **evaluate** — MRR@20 of the new model on all held-out cases, and of both models on the
//!    cases whose items the live model knows (a like-for-like comparison);
//! 4. **decide and publish** — publish iff new ≥ live − `tolerance`, atomically (see
//!    [`crate::registry`]); the reason is recorded in the job either way.
//!
//! **One job at a time, across instances.** The `jobs.slot` unique column admits one running
//! job; the instance that claimed it (`jobs.owner`) holds a lease it renews with every save
//! (at least four times per `retrain.lease_s`). Every save and the publish are conditional on
//! the lease, the publish in the same transaction that records the version. An instance that
//! stops renewing (killed, or cut off) leaves the job to be taken over once the lease expired:
//! the background task of every instance looks each second ([`take_over_expired`]) and the
//! first to update the row runs the job again, as the same job, from the start; an instance
//! that finds its lease taken cancels its training and publishes nothing. After
//! [`MAX_ATTEMPTS`] runs the job is failed. A single SQLite server marks the job it was running
//! failed at its next start ([`crate::serve::recover`]). Nothing is published before step 4,
//! so a failure or a kill at any earlier point leaves the live model as it was.
//!
//! **Warm start.** When the live model has the architecture this job trains, the new model starts
//! from its weights ([`sessionrank_train::warm::remap_model`]: item, category and token rows
//! are matched by id, name and word, so a grown catalog or vocabulary keeps what the live
//! model knew and only new keys start fresh) and trains `warm_start_epochs` at
//! `warm_start_lr`. The job's `metrics.warm_start` says whether it did, from which version,
//! and how many rows were carried over; otherwise why not.
//!
//! **Progress.** The trainer reports every 20 steps and after each epoch's validation; the job
//! (`progress`, `metrics.training`) and the `/metrics` gauge follow, and the job is saved at
//! most once a second and after every epoch.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use burn::tensor::Device;
use serde_json::{Value, json};
use sessionrank_core::ModelBundle;
use sessionrank_core::features::FeatureEncoder;
use sessionrank_data::hygiene::clean_sessions;
use sessionrank_data::split::{RecentSplit, cases_of, split_recent};
use sessionrank_data::{Catalog, Dataset, RankingMetrics, Session, TestCase};
use sessionrank_model::{ModelConfig, SessionRankModel};
use sessionrank_train::device::{PickedDevice, pick};
use sessionrank_train::pipeline::{FeatureOptions, build_encoder, bundle_for, complete_config};
use sessionrank_train::trainer::evaluate_model;
use sessionrank_train::warm::{RemapReport, remap_model, same_architecture};
use sessionrank_train::{
    DatasetProfile, Preset, TrainConfig, TrainOptions, TrainProgress, train_with,
};

use crate::config::RetrainConfig;
use crate::error::{ApiError, ApiResult};
use crate::job::{Job, JobState, MAX_ATTEMPTS, abandoned, interrupted};
use crate::state::AppState;
use crate::store::now_s;
use crate::version::LoadedModel;

/// How often a running job renews its lease: four times per lease, so a slow write or two
/// does not lose it.
fn heartbeat(cfg: &RetrainConfig) -> Duration {
    Duration::from_millis(cfg.lease_s.saturating_mul(1000) / 4).max(Duration::from_millis(250))
}

/// Start a job in the background; 409 naming the running job if there is one.
pub async fn start(state: &AppState) -> ApiResult<Job> {
    if state.jobs.is_stopping() {
        return Err(ApiError::Conflict {
            message: "the server is shutting down".into(),
            job_id: None,
        });
    }
    let job = Job::new(state.models.current_version(), &state.instance);
    let lease_s = state.config.retrain.lease_s as i64;
    if let Err(running) =
        state.store.claim_job(&job.id, &job, &state.instance, lease_s, interrupted).await?
    {
        return Err(ApiError::Conflict {
            message: format!("retraining job {running} is running"),
            job_id: Some(running),
        });
    }
    tracing::info!(job = %job.id, "retraining started");
    launch(state, job.clone());
    Ok(job)
}

/// Run a job this instance holds, in the background.
fn launch(state: &AppState, job: Job) {
    state.jobs.arm();
    state.jobs.set(Some((job.id.clone(), job.progress)));
    let shared = Arc::new(Mutex::new(job));
    let s = state.clone();
    tokio::spawn(async move { run(s, shared).await });
}

/// Take over a job whose instance stopped renewing its lease (killed, or cut off from the
/// database): the first instance to see it expired runs it again from the start, as the
/// same job (same id, `attempts` + 1). After [`MAX_ATTEMPTS`] runs it is failed instead. The
/// background task calls this every second; the conditional update in the store makes
/// exactly one instance win.
pub async fn take_over_expired(state: &AppState) -> anyhow::Result<()> {
    if state.jobs.is_stopping() || state.jobs.running().is_some() {
        return Ok(());
    }
    let cutoff = now_s() - state.config.retrain.lease_s as i64;
    for (id, job, updated_at) in state.store.expired_jobs::<Job>(cutoff).await? {
        let previous_owner = job.owner.clone().unwrap_or_default();
        if job.attempts >= MAX_ATTEMPTS {
            let failed = abandoned(job);
            if state
                .store
                .fail_running_jobs(Some(state.config.retrain.lease_s as i64), |_| failed.clone())
                .await?
                > 0
            {
                tracing::warn!(job = %id, "given up after {MAX_ATTEMPTS} runs");
            }
            continue;
        }
        let mut next = job;
        next.owner = Some(state.instance.clone());
        next.attempts += 1;
        next.stage = "queued".into();
        next.progress = 0.0;
        next.reason = None;
        next.device = None;
        next.model_version = None;
        next.previous_version = state.models.current_version();
        next.updated_at = now_s();
        next.metrics = json!({});
        next.taken_over_from = Some(previous_owner.clone());
        if state.store.take_over_job(&id, updated_at, &state.instance, &next).await? {
            tracing::warn!(
                job = %id,
                "took over the job from {previous_owner} (its lease expired); run {}",
                next.attempts
            );
            launch(state, next);
            return Ok(());
        }
    }
    Ok(())
}

/// Shared job record: the job task updates it, the heartbeat saves it.
type SharedJob = Arc<Mutex<Job>>;

fn snapshot(job: &SharedJob) -> Job {
    match job.lock() {
        Ok(j) => j.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

fn edit(job: &SharedJob, f: impl FnOnce(&mut Job)) -> Job {
    let mut j = match job.lock() {
        Ok(j) => j,
        Err(p) => p.into_inner(),
    };
    f(&mut j);
    j.updated_at = now_s();
    j.clone()
}

/// Store the job (renewing its lease). When another instance took the job over, nothing is
/// written and the training here is cancelled: the job is theirs now.
async fn save(state: &AppState, job: &Job) {
    let running = job.state == JobState::Running;
    match state.store.update_job(&job.id, job.state.as_str(), running, job, &state.instance).await {
        Ok(true) => {}
        Ok(false) => {
            if !state.jobs.is_cancelled() {
                tracing::warn!(job = %job.id, "the job's lease was taken over: stopping here");
            }
            state.jobs.cancel();
        }
        Err(e) => tracing::error!(job = %job.id, "saving the job: {e}"),
    }
    state.jobs.set(running.then(|| (job.id.clone(), job.progress)));
}

async fn stage(state: &AppState, job: &SharedJob, name: &str, progress: f64) {
    let j = edit(job, |j| {
        j.stage = name.into();
        j.progress = progress;
    });
    tracing::info!(job = %j.id, "stage {name}");
    save(state, &j).await;
}

async fn run(state: AppState, job: SharedJob) {
    let heartbeat = {
        let (state, job) = (state.clone(), job.clone());
        let every = heartbeat(&state.config.retrain);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                save(&state, &snapshot(&job)).await;
            }
        })
    };
    // In a task of its own, so that a panic in it (a bug) is an error here and the job is
    // still finished and its slot freed, instead of dying with the slot held.
    let task = {
        let (state, job) = (state.clone(), job.clone());
        tokio::spawn(async move { execute(&state, &job).await })
    };
    let result = match task.await {
        Ok(r) => r,
        Err(e) => Err(anyhow::anyhow!("the job stopped unexpectedly: {e}")),
    };
    heartbeat.abort();
    let j = edit(&job, |j| {
        j.finished_at = Some(now_s());
        j.stage = "done".into();
        j.progress = 1.0;
        match &result {
            Ok(()) => j.state = JobState::Succeeded,
            Err(e) => {
                j.state = JobState::Failed;
                j.reason = Some(format!("{e:#}"));
            }
        }
    });
    let outcome = match (&result, j.published) {
        (Err(_), _) => "failed",
        (Ok(()), true) => "published",
        (Ok(()), false) => "kept_live_model",
    };
    tracing::info!(job = %j.id, "retraining finished: {outcome}: {}", j.reason.as_deref().unwrap_or(""));
    state.metrics.job_finished(outcome);
    save(&state, &j).await;
}

async fn execute(state: &AppState, job: &SharedJob) -> anyhow::Result<()> {
    let cfg = state.config.retrain.clone();
    stage(state, job, "loading", 0.05).await;
    let catalog = state.store.load_catalog().await?;
    let window = cfg.window(now_s());
    let sessions = state.store.load_sessions(&catalog, &window).await?;
    // Before the split: the held-out sessions the publish gate compares on are cleaned too.
    let (sessions, hygiene) = clean_sessions(sessions, &cfg.hygiene);
    if hygiene.sessions_kept < hygiene.sessions_in || hygiene.repeats_capped > 0 {
        tracing::info!(?hygiene, "hygiene: scripted sessions dropped before training");
    }
    let dataset = split(catalog, sessions, &cfg)?;
    if cfg.panic_after_loading {
        panic!("injected panic (retrain.panic_after_loading)");
    }
    edit(job, |j| {
        j.metrics = json!({
            "items": dataset.catalog.len(),
            "window": {
                "since": window.since,
                "max_sessions": window.max_sessions,
                "max_session_events": window.max_session_events,
            },
            "hygiene": hygiene,
            "train_sessions": dataset.train.len(),
            "valid_cases": dataset.valid.len(),
            "test_cases": dataset.test.len(),
        })
    });
    stage(state, job, "training", TRAIN_PROGRESS.0).await;
    let live = state.models.current();
    let reporter = ProgressReporter {
        state: state.clone(),
        job: job.clone(),
        handle: tokio::runtime::Handle::current(),
        last_save: Mutex::new(Instant::now()),
    };
    let cancel = state.jobs.cancel.clone();
    let trained = tokio::task::spawn_blocking(move || {
        train_and_compare(dataset, live, &cfg, &|p| reporter.report(p), &cancel)
    })
    .await
    .context("the training thread panicked")??;
    edit(job, |j| {
        if let Some(m) = j.metrics.as_object_mut() {
            m.extend(trained.metrics.as_object().cloned().unwrap_or_default());
        }
        j.device = Some(trained.device.clone());
        j.model_version = Some(trained.bundle.manifest.model_version.clone());
        j.reason = Some(trained.reason.clone());
    });
    if !trained.publish {
        return Ok(());
    }
    if state.jobs.is_stopping() {
        bail!("not published: the server is shutting down; the live model is unchanged");
    }
    if state.jobs.is_cancelled() {
        bail!("not published: another instance took the job over; the live model is unchanged");
    }
    stage(state, job, "publishing", 0.9).await;
    let id = snapshot(job).id;
    let version = state
        .models
        .publish_fenced(trained.bundle, true, Some((&id, &state.instance)))
        .await
        .context("publishing")?;
    tracing::info!("model {version} is live");
    edit(job, |j| j.published = true);
    Ok(())
}

/// The job's `progress` while the trainer runs: from, to.
const TRAIN_PROGRESS: (f64, f64) = (0.1, 0.8);

/// Carries the trainer's reports (on the training thread) into the job and the gauge.
struct ProgressReporter {
    state: AppState,
    job: SharedJob,
    handle: tokio::runtime::Handle,
    last_save: Mutex<Instant>,
}

impl ProgressReporter {
    fn report(&self, p: &TrainProgress) {
        let j = edit(&self.job, |j| {
            j.progress = TRAIN_PROGRESS.0 + (TRAIN_PROGRESS.1 - TRAIN_PROGRESS.0) * p.fraction;
            if let Some(m) = j.metrics.as_object_mut() {
                m.insert("training".into(), json!(p));
            }
        });
        self.state.jobs.set(Some((j.id.clone(), j.progress)));
        // Saving is a database write: at most once a second, and after every epoch.
        let due = match self.last_save.lock() {
            Ok(mut last) if p.loss.is_none() || last.elapsed() >= Duration::from_secs(1) => {
                *last = Instant::now();
                true
            }
            _ => false,
        };
        if due {
            // A blocking thread (spawn_blocking), so waiting on the runtime here is allowed.
            self.handle.block_on(save(&self.state, &j));
        }
    }
}

/// Sessions (ordered by their last event) → a dataset: the most recent `holdout_fraction`
/// are test prefixes, the same share before them validation prefixes, the rest trains.
pub fn split(
    catalog: Catalog,
    sessions: Vec<Session>,
    cfg: &RetrainConfig,
) -> anyhow::Result<Dataset> {
    let n = sessions.len();
    if n < cfg.min_sessions.max(3) {
        bail!(
            "only {n} sessions are stored; retraining needs at least {} (retrain.min_sessions)",
            cfg.min_sessions.max(3)
        );
    }
    let f = cfg.holdout_fraction;
    let RecentSplit { train, valid, test } = split_recent(sessions, f, f, 1);
    let mut test = cases_of(&test, |_| true);
    // Keep the most recent cases (sessions are in time order).
    if test.len() > cfg.max_eval_cases {
        test = test.split_off(test.len() - cfg.max_eval_cases);
    }
    let valid = cases_of(&valid, |_| true);
    // A shop's live log is anonymous sessions.
    Ok(Dataset {
        name: cfg.shop.clone(),
        kind: sessionrank_data::DatasetKind::Sessions,
        catalog,
        train,
        valid,
        test,
    })
}

struct Trained {
    bundle: ModelBundle,
    publish: bool,
    reason: String,
    device: String,
    metrics: Value,
}

/// The test cases the live model can be asked (all items known to it), mapped to its rows,
/// with their indices in `cases`.
fn cases_for(
    live: &FeatureEncoder,
    catalog: &Catalog,
    cases: &[TestCase],
) -> (Vec<usize>, Vec<TestCase>) {
    let map = |idx: u32| catalog.get(idx).and_then(|it| live.item_row(&it.id)).map(|row| row - 1);
    let mut kept = Vec::new();
    let mut mapped = Vec::new();
    'case: for (i, c) in cases.iter().enumerate() {
        let Some(target) = map(c.target) else { continue };
        let mut prefix = Vec::with_capacity(c.prefix.len());
        for e in &c.prefix {
            let Some(item) = map(e.item) else { continue 'case };
            prefix.push(sessionrank_data::Event { item, ..*e });
        }
        kept.push(i);
        mapped.push(TestCase { prefix, target });
    }
    (kept, mapped)
}

/// The live model re-expressed for the new catalog, or why the job trains from scratch.
enum WarmStart {
    Used { from_version: String, model: Box<SessionRankModel>, rows: RemapReport },
    NotUsed(String),
}

impl WarmStart {
    fn prepare(
        live: Option<&LoadedModel>,
        config: &ModelConfig,
        encoder: &FeatureEncoder,
        catalog: &Catalog,
        device: &Device,
        enabled: bool,
        seed: u64,
    ) -> Self {
        let Some(live) = live else { return Self::NotUsed("no live model".into()) };
        if !enabled {
            return Self::NotUsed("disabled (retrain.warm_start = false)".into());
        }
        if !same_architecture(&live.manifest().config, config) {
            return Self::NotUsed(format!(
                "the live model {} has another architecture than this job's training settings",
                live.version()
            ));
        }
        let engine = match live.engine() {
            Ok(e) => e,
            Err(e) => return Self::NotUsed(format!("{e:#}")),
        };
        device.seed(seed);
        match remap_model(
            engine.model(),
            &live.manifest().config,
            engine.encoder(),
            config,
            encoder,
            catalog,
            device,
        ) {
            Ok((_, rows)) if config.use_item_ids && rows.items.carried == 0 => Self::NotUsed(
                format!("no item of the live model {} is in the catalog", live.version()),
            ),
            Ok((model, rows)) => Self::Used {
                from_version: live.version().to_string(),
                model: Box::new(model),
                rows,
            },
            Err(e) => Self::NotUsed(e.to_string()),
        }
    }
}

fn train_and_compare(
    dataset: Dataset,
    live: Option<Arc<LoadedModel>>,
    cfg: &RetrainConfig,
    on_progress: &dyn Fn(&TrainProgress),
    cancel: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<Trained> {
    let PickedDevice { device, description: device_name } = pick(cfg.device)?;
    let (mut tc, settings) = train_config(cfg, &dataset);
    let encoder = build_encoder(
        &dataset,
        &FeatureOptions::default(),
        tc.model.max_len,
        tc.model.max_candidates,
    )?;
    tc.model = complete_config(tc.model, &encoder);
    let config = tc.model.clone();
    let warm = WarmStart::prepare(
        live.as_deref(),
        &config,
        &encoder,
        &dataset.catalog,
        &device,
        cfg.warm_start,
        tc.seed,
    );
    if let WarmStart::Used { .. } = warm {
        tc.max_epochs = cfg.warm_start_epochs.min(tc.max_epochs);
        tc.lr = cfg.warm_start_lr;
    }
    if let Some(n) = cfg.fail_after_epoch {
        tc.max_epochs = tc.max_epochs.min(n);
    }
    let (initial_model, warm_json) = match &warm {
        WarmStart::Used { from_version, model, rows } => {
            tracing::info!("warm start from {from_version}: {rows:?}");
            (
                Some(model.as_ref()),
                json!({"used": true, "from_version": from_version, "rows": rows, "epochs": tc.max_epochs, "lr": tc.lr}),
            )
        }
        WarmStart::NotUsed(reason) => {
            tracing::info!("training from scratch: {reason}");
            (None, json!({"used": false, "reason": reason}))
        }
    };
    tracing::info!(
        "training on {device_name}: {} sessions, {} items",
        dataset.train.len(),
        dataset.catalog.len()
    );
    let start = Instant::now();
    let outcome = train_with(
        &dataset,
        &encoder,
        &tc,
        &device,
        TrainOptions {
            initial_model,
            on_progress: Some(on_progress),
            cancel: Some(cancel),
            ..TrainOptions::default()
        },
    )
    .map_err(|e| match e {
        sessionrank_train::TrainError::Cancelled(step) => anyhow::anyhow!(
            "cancelled after {step} steps: the server is shutting down (or another instance \
             took the job over); the live model is unchanged"
        ),
        other => other.into(),
    })?;
    if let Some(n) = cfg.fail_after_epoch {
        bail!("injected failure after epoch {n} (retrain.fail_after_epoch)");
    }
    let new_all = evaluate_model(&outcome.model, &encoder, &dataset.test, false, &device);
    let (live_m, new_common) = match &live {
        Some(l) => {
            let engine = l.engine()?;
            let (kept, mapped) = cases_for(engine.encoder(), &dataset.catalog, &dataset.test);
            if mapped.is_empty() {
                (None, None)
            } else {
                let common: Vec<TestCase> = kept.iter().map(|&i| dataset.test[i].clone()).collect();
                let live_m = evaluate_model(
                    engine.model(),
                    engine.encoder(),
                    &mapped,
                    false,
                    engine.device(),
                );
                (
                    Some(live_m),
                    Some(evaluate_model(&outcome.model, &encoder, &common, false, &device)),
                )
            }
        }
        None => (None, None),
    };
    let (publish, reason) =
        decide(&new_all, live.as_deref(), live_m.as_ref(), new_common.as_ref(), cfg.tolerance);
    let metrics = json!({
        "train_seconds": outcome.train_seconds,
        "targets_per_second": outcome.targets_per_second,
        "best_epoch": outcome.best_epoch,
        "epochs": outcome.history.len(),
        "history": outcome.history,
        "holdout": {"new": new_all, "live": live_m, "new_on_live_cases": new_common},
        "tolerance": cfg.tolerance,
        "settings": settings,
        "warm_start": warm_json,
        "job_seconds": start.elapsed().as_secs_f64(),
    });
    let bundle_metrics = json!({"holdout": new_all});
    let bundle =
        bundle_for(&dataset, &config, &outcome.model, &encoder, bundle_metrics, cfg.safetensors)?;
    Ok(Trained { bundle, publish, reason, device: device_name, metrics })
}

/// The job's training settings: `[retrain.train]`, or the preset for `dataset`; the job's own
/// time budget either way. Also what they are, for the job's metrics.
fn train_config(cfg: &RetrainConfig, dataset: &Dataset) -> (TrainConfig, String) {
    let (mut tc, settings) = match &cfg.train {
        Some(tc) => (tc.clone(), "retrain.train".to_string()),
        None => {
            let profile = DatasetProfile::of(dataset);
            let preset = Preset::for_profile(&profile);
            tracing::info!("training settings: preset {preset} for {profile}");
            (TrainConfig::preset(&profile), format!("preset {preset}"))
        }
    };
    tc.time_budget_s = cfg.time_budget_s;
    (tc, settings)
}

fn decide(
    new_all: &RankingMetrics,
    live: Option<&LoadedModel>,
    live_m: Option<&RankingMetrics>,
    new_common: Option<&RankingMetrics>,
    tol: f64,
) -> (bool, String) {
    match (live, live_m, new_common) {
        (None, _, _) => (
            true,
            format!(
                "no live model: published (held-out MRR@20 {:.2} on {} cases)",
                new_all.mrr_at_20, new_all.cases
            ),
        ),
        (Some(l), Some(old), Some(new)) => {
            let (n, o) = (new.mrr_at_20, old.mrr_at_20);
            if n >= o - tol {
                (
                    true,
                    format!(
                        "published: MRR@20 {n:.2} vs live {} {o:.2} (tolerance {tol}) on {} held-out cases",
                        l.version(),
                        new.cases
                    ),
                )
            } else {
                (
                    false,
                    format!(
                        "not published: MRR@20 {n:.2} is worse than live {} {o:.2} by more than {tol} on {} held-out cases",
                        l.version(),
                        new.cases
                    ),
                )
            }
        }
        (Some(l), _, _) => (
            false,
            format!(
                "not published: no held-out case uses only items the live model {} knows, so the two cannot be compared",
                l.version()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessionrank_data::{Event, Item};

    fn sessions(n: usize) -> Vec<Session> {
        (0..n)
            .map(|i| Session {
                id: format!("s{i}"),
                events: vec![Event::view(0), Event::view(1), Event::view(0)],
            })
            .collect()
    }

    #[test]
    fn split_holds_out_the_most_recent_sessions() {
        let mut catalog = Catalog::new();
        catalog.upsert(Item { id: "a".into(), ..Item::default() });
        catalog.upsert(Item { id: "b".into(), ..Item::default() });
        let d = split(catalog.clone(), sessions(100), &RetrainConfig::default())
            .expect("enough sessions");
        assert_eq!(d.train.len(), 81);
        assert_eq!(d.train.last().map(|s| s.id.as_str()), Some("s80"));
        assert_eq!(d.test.len(), 10 * 2);
        assert_eq!(d.valid.len(), 9 * 2);
        assert!(split(catalog, sessions(2), &RetrainConfig::default()).is_err());
    }

    #[test]
    fn without_a_train_table_the_job_trains_the_preset_for_its_data() {
        let mut catalog = Catalog::new();
        catalog.upsert(Item { id: "a".into(), ..Item::default() });
        catalog.upsert(Item { id: "b".into(), ..Item::default() });
        let cfg = RetrainConfig::default();
        let d = split(catalog, sessions(100), &cfg).expect("enough sessions");
        let (tc, settings) = train_config(&cfg, &d);
        assert_eq!(settings, "preset sessions");
        assert_eq!(tc.model, TrainConfig::preset(&DatasetProfile::of(&d)).model);
        assert_eq!(tc.time_budget_s, cfg.time_budget_s, "the job's budget");

        let cfg = RetrainConfig {
            train: Some(TrainConfig::new(ModelConfig::new().with_d_model(8))),
            time_budget_s: None,
            ..RetrainConfig::default()
        };
        let (tc, settings) = train_config(&cfg, &d);
        assert_eq!((tc.model.d_model, settings.as_str()), (8, "retrain.train"));
        assert_eq!(tc.time_budget_s, None);
    }
}
