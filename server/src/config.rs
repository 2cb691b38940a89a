//! Service configuration: a TOML file, overridden by `SESSIONRANK_*` environment variables,
//! overridden by flags.
//!
//! ```toml
//! listen = "0.0.0.0:8080"
//! data_dir = "/var/lib/sessionrank"
//! # database_url = "postgres://sessionrank@db/sessionrank"   # default: SQLite in data_dir
//! body_limit_bytes = 4194304
//! keep_versions = 5
//!
//! [retrain]
//! device = "auto"          # auto | flex | wgpu
//! time_budget_s = 1800
//! tolerance = 0.5          # MRR@20 points the new model may lose and still be published
//!
//! [retrain.hygiene]        # bot and scripted sessions dropped before training (default on)
//! max_item_repeats = 3
//!
//! [retrain.train]          # a TrainConfig; left out: the preset for the stored data
//! max_epochs = 20
//!
//! [retrain.train.model]    # its ModelConfig
//! d_model = 64
//! ```
//!
//! The admin token is read from `SESSIONRANK_ADMIN_TOKEN` only (never a flag, which `ps` would
//! show, and never printed: [`Config`]'s `Debug` redacts it). Ingest keys (who may write events
//! and items, see [`crate::auth`]) come from `SESSIONRANK_INGEST_KEYS` and from
//! `[[ingest_keys]]` tables holding each secret's sha256; the origins allowed to read the
//! public routes from another site's pages from `cors_origins` or `SESSIONRANK_CORS_ORIGINS`
//! (comma-separated).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Deserializer, Serialize};
use sessionrank_data::hygiene::HygieneConfig;
use sessionrank_model::ModelConfig;
use sessionrank_train::{DeviceChoice, TrainConfig};

use crate::auth::{INGEST_KEYS_ENV, IngestKeyEntry, IngestKeys, parse_env_keys};

/// Environment variable holding the admin bearer token.
pub const ADMIN_TOKEN_ENV: &str = "SESSIONRANK_ADMIN_TOKEN";

/// Environment variable listing the origins (`https://shop.example`) allowed by CORS.
pub const CORS_ORIGINS_ENV: &str = "SESSIONRANK_CORS_ORIGINS";

/// What the operator set outside the configuration file (the `sessionrank serve` flags and
/// their environment variables, parsed by the CLI crate: the service has no command line of
/// its own). Each field left `None` falls back to the file, then to the defaults.
#[derive(Debug, Clone, Default)]
pub struct ServeArgs {
    /// TOML configuration file.
    pub config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080).
    pub listen: Option<SocketAddr>,
    /// Directory for the SQLite database and the published model bundles (default
    /// `./sessionrank-data`).
    pub data_dir: Option<PathBuf>,
    /// `postgres://…` to share one database between several instances (default
    /// `sqlite://<data-dir>/sessionrank.db`).
    pub database_url: Option<String>,
    /// Static files of the demo page (default `web/dist` when it exists).
    pub web_dir: Option<PathBuf>,
    /// Largest request body accepted, in bytes (default 4 MiB).
    pub body_limit: Option<usize>,
    /// Published model versions kept on disk, the live one always is (default 5).
    pub keep_versions: Option<usize>,
    /// Device for retraining (default `auto`).
    pub train_device: Option<TrainDevice>,
    /// Seconds a retraining job may train, checked after each epoch (default 1800).
    pub train_time_budget: Option<u64>,
}

/// Where retraining runs: the one device vocabulary of the workspace (`auto` = a hardware
/// GPU through wgpu when one initialises, else the CPU; `flex`; `wgpu`, failing the job when
/// no adapter exists), picked by [`sessionrank_train::device::pick`].
pub type TrainDevice = DeviceChoice;

/// How a retraining job trains, evaluates and decides. The training itself is one
/// [`TrainConfig`] (which holds the [`ModelConfig`]), the same type `sessionrank train`
/// builds; every other field is the job's own.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrainConfig {
    pub device: TrainDevice,
    /// Name recorded in the manifest (`dataset`).
    pub shop: String,
    /// `[retrain.train]` and `[retrain.train.model]`. `None`: the preset for the stored data
    /// ([`TrainConfig::preset`], chosen by the data's kind and size). A table replaces the
    /// preset as a whole: the keys it leaves out take `TrainConfig`'s and `ModelConfig`'s
    /// defaults. Its `time_budget_s` must stay unset (the job's budget is `time_budget_s`
    /// here); a warm-started job trains `warm_start_epochs` at `warm_start_lr` instead of its
    /// `max_epochs` and `lr`.
    #[serde(deserialize_with = "train_table")]
    pub train: Option<TrainConfig>,
    /// Stop training after the epoch during which this many seconds passed.
    pub time_budget_s: Option<u64>,
    /// Share of the most recent sessions held out to compare the new and the live model.
    pub holdout_fraction: f64,
    /// At most this many held-out cases are evaluated (the most recent ones).
    pub max_eval_cases: usize,
    /// Publish only if new MRR@20 ≥ live MRR@20 − tolerance (MRR@20 in percent, as reported).
    pub tolerance: f64,
    /// Refuse to train on fewer sessions than this.
    pub min_sessions: usize,
    /// Train on the events of the last this many days only (by event time); `None`: no limit
    /// by time.
    pub window_days: Option<u64>,
    /// Train on at most this many sessions, the most recently active: with
    /// `max_session_events` it bounds what a job holds in memory, however many events are
    /// stored (they are read from the store in pages, newest first).
    pub max_sessions: usize,
    /// At most this many events of a session are kept (its newest).
    pub max_session_events: usize,
    /// Also write `model.safetensors` into published bundles.
    pub safetensors: bool,
    /// Seconds a running job's instance may go without renewing its lease (it renews four
    /// times per lease) before another instance takes the job over.
    pub lease_s: u64,
    /// Test hook: fail the job after this many epochs, as a crash mid-training would.
    pub fail_after_epoch: Option<usize>,
    /// Test hook, never read from a file: panic in the job's task after loading, as a bug
    /// would.
    #[serde(skip)]
    pub panic_after_loading: bool,
    /// Start from the live model's weights when its architecture matches (the catalog may have
    /// grown: item, category and token rows are matched by id, name and word).
    pub warm_start: bool,
    /// Epochs of a warm-started job (at most the training's `max_epochs`): fine-tuning needs
    /// fewer.
    pub warm_start_epochs: usize,
    /// Peak learning rate of a warm-started job: lower, so fine-tuning does not wash out
    /// what the live model learned.
    pub warm_start_lr: f64,
    /// `[retrain.hygiene]`: what is taken out of the stored sessions before a job splits and
    /// trains ([`sessionrank_data::hygiene`]; on by default, `enabled = false` turns it off).
    pub hygiene: HygieneConfig,
}

impl RetrainConfig {
    /// The events a job reads, at time `now` (seconds since the Unix epoch).
    pub fn window(&self, now: i64) -> crate::store::Window {
        let days = self.window_days.map(|d| i64::try_from(d).unwrap_or(i64::MAX).min(1 << 40));
        crate::store::Window {
            since: days.map(|d| now.saturating_sub(d.saturating_mul(86_400))),
            max_sessions: self.max_sessions,
            max_session_events: self.max_session_events,
            ..crate::store::Window::default()
        }
    }
}

impl Default for RetrainConfig {
    fn default() -> Self {
        Self {
            device: TrainDevice::Auto,
            shop: "shop".into(),
            train: None,
            time_budget_s: Some(1800),
            holdout_fraction: 0.1,
            max_eval_cases: 5000,
            tolerance: 0.5,
            min_sessions: 10,
            window_days: None,
            max_sessions: 200_000,
            max_session_events: 200,
            safetensors: false,
            lease_s: 60,
            fail_after_epoch: None,
            panic_after_loading: false,
            warm_start: true,
            warm_start_epochs: 5,
            warm_start_lr: 3e-4,
            hygiene: HygieneConfig::default(),
        }
    }
}

/// `[retrain.train]`: the table laid over `TrainConfig::new(ModelConfig::new())`, because
/// burn's `Config` derive wants every field in a serialised config and a hand-written file
/// should state only what it changes. A key neither config has is refused by its full name
/// (burn's derive would ignore it), as a wrongly typed value is.
fn train_table<'de, D: Deserializer<'de>>(d: D) -> Result<Option<TrainConfig>, D::Error> {
    let given = serde_json::Value::deserialize(d)?;
    train_config_from(given).map(Some).map_err(serde::de::Error::custom)
}

const TRAIN_TABLE: &str = "retrain.train";

fn train_config_from(given: serde_json::Value) -> Result<TrainConfig, String> {
    let defaults = TrainConfig::new(ModelConfig::new());
    let mut merged = serde_json::to_value(&defaults).map_err(|e| e.to_string())?;
    overlay(&mut merged, given.clone());
    let config: TrainConfig = serde_path_to_error::deserialize(merged).map_err(|e| {
        match e.path().to_string().as_str() {
            "." => format!("{TRAIN_TABLE}: {}", e.inner()),
            path => format!("{TRAIN_TABLE}.{path}: {}", e.inner()),
        }
    })?;
    let parsed = serde_json::to_value(&config).map_err(|e| e.to_string())?;
    match unknown_key(&given, &parsed, TRAIN_TABLE) {
        Some(message) => Err(message),
        None => Ok(config),
    }
}

/// `given`'s keys set over `base`, tables merged key by key.
fn overlay(base: &mut serde_json::Value, given: serde_json::Value) {
    match (base, given) {
        (serde_json::Value::Object(base), serde_json::Value::Object(given)) => {
            for (key, value) in given {
                match base.get_mut(&key) {
                    Some(slot) => overlay(slot, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, given) => *base = given,
    }
}

/// The first key of `given` that `parsed` (the config read from it, serialised again) does
/// not have, as an error naming it and the keys its table accepts.
fn unknown_key(
    given: &serde_json::Value,
    parsed: &serde_json::Value,
    path: &str,
) -> Option<String> {
    let (serde_json::Value::Object(given), serde_json::Value::Object(parsed)) = (given, parsed)
    else {
        return None;
    };
    given.iter().find_map(|(key, value)| match parsed.get(key) {
        Some(inner) => unknown_key(value, inner, &format!("{path}.{key}")),
        None => Some(format!(
            "unknown field `{path}.{key}`, expected one of {}",
            parsed.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
        )),
    })
}

/// The TOML file: every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    web_dir: Option<PathBuf>,
    body_limit_bytes: Option<usize>,
    max_bundle_bytes: Option<usize>,
    max_events_per_request: Option<usize>,
    max_items_per_request: Option<usize>,
    request_timeout_s: Option<u64>,
    concurrency_limit: Option<usize>,
    max_connections: Option<usize>,
    header_read_timeout_s: Option<u64>,
    shutdown_deadline_s: Option<u64>,
    event_retention_days: Option<u64>,
    candidates_ttl_s: Option<u64>,
    keep_versions: Option<usize>,
    ingest_keys: Option<Vec<IngestKeyEntry>>,
    cors_origins: Option<Vec<String>>,
    retrain: Option<RetrainConfig>,
}

impl FileConfig {
    fn parse(text: &str) -> anyhow::Result<Self> {
        toml::from_str(text).map_err(|e| match moved_training_key(text) {
            Some(hint) => anyhow::anyhow!("{e}{hint}"),
            None => anyhow::Error::new(e),
        })
    }
}

/// A hint for a file written before the training settings moved into `[retrain.train]`: the
/// first `[retrain]` key that is now a `TrainConfig` or `ModelConfig` key, and where it went.
fn moved_training_key(text: &str) -> Option<String> {
    let file: toml::Table = toml::from_str(text).ok()?;
    let retrain = file.get("retrain")?.as_table()?;
    let defaults = serde_json::to_value(TrainConfig::new(ModelConfig::new())).ok()?;
    let (train, model) = (defaults.as_object()?, defaults.get("model")?.as_object()?);
    let known = serde_json::to_value(RetrainConfig::default()).ok()?;
    retrain.keys().filter(|k| known.get(k.as_str()).is_none()).find_map(|key| {
        let to = if train.contains_key(key) {
            format!("retrain.train.{key}")
        } else if model.contains_key(key) {
            format!("retrain.train.model.{key}")
        } else {
            return None;
        };
        Some(format!(
            "training settings are read from [retrain.train] and [retrain.train.model]: \
             `retrain.{key}` is now `{to}`"
        ))
    })
}

/// The resolved configuration.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub web_dir: Option<PathBuf>,
    /// `None` disables the admin API.
    pub admin_token: Option<String>,
    /// Who may write events and items; none: every write is refused.
    pub ingest_keys: IngestKeys,
    /// Origins whose pages may call the public routes (CORS); empty: same origin only.
    pub cors_origins: Vec<String>,
    pub body_limit: usize,
    /// Largest bundle archive `POST /admin/models` accepts (the admin route's own limit:
    /// bundles are far larger than any other body).
    pub max_bundle_bytes: usize,
    pub max_events_per_request: usize,
    pub max_items_per_request: usize,
    pub request_timeout: Duration,
    pub concurrency_limit: usize,
    /// Open connections at most; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// A connection that has not sent a whole request head this long after it opened, or
    /// after its previous answer (idle keep-alive), is closed: slow-loris clients hold nothing.
    pub header_read_timeout: Duration,
    /// After SIGTERM: how long connections and a running job get to finish before the process
    /// exits anyway (a running training is cancelled at once; the live model is untouched).
    pub shutdown_deadline: Duration,
    /// Events older than this many days are deleted in the background; `None` keeps them.
    pub event_retention_days: Option<u64>,
    /// A candidate page is rebuilt at least this often (what other instances stored reaches
    /// it within this time; this instance's own writes sooner, see [`crate::pages`]).
    pub candidates_ttl: Duration,
    pub keep_versions: usize,
    pub retrain: RetrainConfig,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &redact_url(&self.database_url))
            .field("web_dir", &self.web_dir)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<redacted>"))
            .field("ingest_keys", &self.ingest_keys)
            .field("cors_origins", &self.cors_origins)
            .field("body_limit", &self.body_limit)
            .field("max_bundle_bytes", &self.max_bundle_bytes)
            .field("max_events_per_request", &self.max_events_per_request)
            .field("max_items_per_request", &self.max_items_per_request)
            .field("request_timeout", &self.request_timeout)
            .field("concurrency_limit", &self.concurrency_limit)
            .field("max_connections", &self.max_connections)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("shutdown_deadline", &self.shutdown_deadline)
            .field("event_retention_days", &self.event_retention_days)
            .field("candidates_ttl", &self.candidates_ttl)
            .field("keep_versions", &self.keep_versions)
            .field("retrain", &self.retrain)
            .finish()
    }
}

/// The admin token as configured, without the whitespace a copy-paste or a file's final
/// newline adds (which would otherwise lock the operator out); empty means none.
pub fn admin_token_from(raw: Option<String>) -> Option<String> {
    raw.map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}

/// A database URL with any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => {
                    format!("{}{}:***{}", &url[..scheme + 3], &creds[..colon], &url[at..])
                }
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// The default SQLite URL for a data directory.
pub fn sqlite_url(data_dir: &Path) -> String {
    // Absolute: a relative path would be read as the URL's host.
    let file = data_dir.join("sessionrank.db");
    let file = std::path::absolute(&file).unwrap_or(file);
    format!("sqlite://{}?mode=rwc", file.display())
}

impl Config {
    /// Defaults for a data directory, no admin token (what tests start from).
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: sqlite_url(&data_dir),
            data_dir,
            web_dir: None,
            admin_token: None,
            ingest_keys: IngestKeys::default(),
            cors_origins: Vec::new(),
            body_limit: 4 << 20,
            max_bundle_bytes: 512 << 20,
            max_events_per_request: 10_000,
            max_items_per_request: 10_000,
            request_timeout: Duration::from_secs(30),
            concurrency_limit: 1024,
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            shutdown_deadline: Duration::from_secs(10),
            event_retention_days: None,
            candidates_ttl: Duration::from_secs(60),
            keep_versions: 5,
            retrain: RetrainConfig::default(),
        }
    }

    /// File, then the operator's overrides (flags and environment, merged by the CLI).
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                FileConfig::parse(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("sessionrank-data"));
        let mut c = Self::for_data_dir(data_dir);
        if let Some(url) = args.database_url.clone().or(file.database_url) {
            c.database_url = url;
        }
        if let Some(listen) = args.listen.or(file.listen) {
            c.listen = listen;
        }
        c.web_dir = args.web_dir.clone().or(file.web_dir).or_else(|| {
            let d = PathBuf::from("web/dist");
            d.is_dir().then_some(d)
        });
        c.admin_token = admin_token_from(std::env::var(ADMIN_TOKEN_ENV).ok());
        let mut keys = Vec::new();
        for entry in file.ingest_keys.iter().flatten() {
            keys.push(entry.resolve()?);
        }
        if let Ok(text) = std::env::var(INGEST_KEYS_ENV) {
            keys.extend(parse_env_keys(&text)?);
        }
        c.ingest_keys = IngestKeys::new(keys)?;
        c.cors_origins = match std::env::var(CORS_ORIGINS_ENV) {
            Ok(list) => {
                list.split(',').map(str::trim).filter(|o| !o.is_empty()).map(String::from).collect()
            }
            Err(_) => file.cors_origins.unwrap_or_default(),
        };
        if let Some(v) = args.body_limit.or(file.body_limit_bytes) {
            c.body_limit = v;
        }
        if let Some(v) = file.max_bundle_bytes {
            c.max_bundle_bytes = v;
        }
        if let Some(v) = file.max_events_per_request {
            c.max_events_per_request = v;
        }
        if let Some(v) = file.max_items_per_request {
            c.max_items_per_request = v;
        }
        if let Some(v) = file.request_timeout_s {
            c.request_timeout = Duration::from_secs(v);
        }
        if let Some(v) = file.concurrency_limit {
            c.concurrency_limit = v;
        }
        if let Some(v) = file.max_connections {
            c.max_connections = v;
        }
        if let Some(v) = file.header_read_timeout_s {
            c.header_read_timeout = Duration::from_secs(v);
        }
        if let Some(v) = file.shutdown_deadline_s {
            c.shutdown_deadline = Duration::from_secs(v);
        }
        c.event_retention_days = file.event_retention_days;
        if let Some(v) = file.candidates_ttl_s {
            c.candidates_ttl = Duration::from_secs(v);
        }
        if let Some(v) = args.keep_versions.or(file.keep_versions) {
            c.keep_versions = v;
        }
        if let Some(r) = file.retrain {
            c.retrain = r;
        }
        if let Some(d) = args.train_device {
            c.retrain.device = d;
        }
        if let Some(b) = args.train_time_budget {
            c.retrain.time_budget_s = Some(b);
        }
        c.validate()?;
        Ok(c)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        for origin in &self.cors_origins {
            anyhow::ensure!(
                (origin.starts_with("https://") || origin.starts_with("http://"))
                    && !origin
                        .trim_end_matches('/')
                        .contains(|c: char| c == '*' || c.is_whitespace())
                    && origin.matches('/').count() == 2,
                "cors origin `{origin}`: expected scheme://host[:port], no path and no wildcard"
            );
        }
        anyhow::ensure!(self.body_limit >= 1024, "body_limit_bytes must be at least 1024");
        anyhow::ensure!(self.keep_versions >= 1, "keep_versions must be at least 1");
        anyhow::ensure!(self.concurrency_limit >= 1, "concurrency_limit must be at least 1");
        anyhow::ensure!(self.max_connections >= 1, "max_connections must be at least 1");
        anyhow::ensure!(
            !self.header_read_timeout.is_zero(),
            "header_read_timeout_s must be at least 1"
        );
        anyhow::ensure!(
            self.event_retention_days.is_none_or(|d| d >= 1),
            "event_retention_days must be at least 1"
        );
        let r = &self.retrain;
        if let Some(t) = &r.train {
            let m = &t.model;
            anyhow::ensure!(
                m.d_model > 0 && m.n_heads > 0 && m.d_model.is_multiple_of(m.n_heads),
                "retrain.train.model.d_model must be a positive multiple of \
                 retrain.train.model.n_heads"
            );
            anyhow::ensure!(
                t.time_budget_s.is_none(),
                "retrain.train.time_budget_s is not used: set retrain.time_budget_s, the job's \
                 time budget"
            );
        }
        r.hygiene.validate().map_err(|e| anyhow::anyhow!("retrain.{e}"))?;
        anyhow::ensure!(
            r.holdout_fraction > 0.0 && r.holdout_fraction < 0.5,
            "retrain.holdout_fraction must be in (0, 0.5)"
        );
        anyhow::ensure!(
            r.tolerance >= 0.0 && r.tolerance.is_finite(),
            "retrain.tolerance must be >= 0"
        );
        anyhow::ensure!(
            r.window_days.is_none_or(|d| d >= 1),
            "retrain.window_days must be at least 1"
        );
        anyhow::ensure!(
            r.max_sessions >= r.min_sessions.max(3),
            "retrain.max_sessions must be at least retrain.min_sessions"
        );
        anyhow::ensure!(r.max_session_events >= 1, "retrain.max_session_events must be at least 1");
        anyhow::ensure!(r.lease_s >= 2, "retrain.lease_s must be at least 2");
        anyhow::ensure!(r.warm_start_epochs >= 1, "retrain.warm_start_epochs must be at least 1");
        anyhow::ensure!(
            r.warm_start_lr > 0.0 && r.warm_start_lr.is_finite(),
            "retrain.warm_start_lr must be > 0"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_token_is_trimmed() {
        assert_eq!(
            admin_token_from(Some(" s3cret-token\n".into())).as_deref(),
            Some("s3cret-token")
        );
        assert_eq!(admin_token_from(Some(" \n".into())), None);
        assert_eq!(admin_token_from(None), None);
    }

    #[test]
    fn cors_origins_are_checked() {
        let mut c = Config::for_data_dir("x");
        c.cors_origins = vec!["https://shop.example".into(), "http://127.0.0.1:5173".into()];
        c.validate().expect("valid origins");
        for bad in ["*", "https://*.shop.example", "shop.example", "https://shop.example/path"] {
            c.cors_origins = vec![bad.into()];
            assert!(c.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("sqlite:///x.db"), "sqlite:///x.db");
    }

    #[test]
    fn file_config_parses() {
        let f = FileConfig::parse(
            "listen = \"127.0.0.1:9\"\n[retrain]\ndevice = \"flex\"\n\
             [retrain.train]\nmax_epochs = 1\nlr = 1\n[retrain.train.model]\nd_model = 16\n",
        )
        .expect("valid toml");
        let r = f.retrain.expect("a [retrain] table");
        assert_eq!(r.device, TrainDevice::Flex);
        let t = r.train.expect("a [retrain.train] table");
        assert_eq!((t.max_epochs, t.model.d_model), (1, 16));
        assert!((t.lr - 1.0).abs() < 1e-12, "an integer is a float");
        let defaults = TrainConfig::new(ModelConfig::new());
        assert_eq!(
            (t.batch_size, t.model.n_layers),
            (defaults.batch_size, 2),
            "left out: defaults"
        );
        assert!(FileConfig::parse("lisen = 1").is_err());
        let r = FileConfig::parse("[retrain]\ndevice = \"flex\"\n").expect("valid").retrain;
        assert!(r.is_some_and(|r| r.train.is_none()), "no table: the preset");
    }

    fn parse_error(text: &str) -> String {
        match FileConfig::parse(text) {
            Ok(f) => panic!("parsed: {:?}", f.retrain),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn hygiene_is_on_by_default_and_its_table_is_checked() {
        let r = FileConfig::parse("[retrain]\ndevice = \"flex\"\n").expect("valid").retrain;
        assert!(r.is_some_and(|r| r.hygiene == HygieneConfig::default() && r.hygiene.enabled));
        let r = FileConfig::parse("[retrain.hygiene]\nmax_item_repeats = 5\n")
            .expect("valid")
            .retrain
            .expect("a [retrain] table");
        assert_eq!((r.hygiene.max_item_repeats, r.hygiene.max_identical), (5, 4));
        let e = parse_error("[retrain.hygiene]\nmax_repeats = 5\n");
        assert!(e.contains("unknown field `max_repeats`"), "{e}");
        let mut c = Config::for_data_dir("x");
        c.retrain.hygiene.dominant_share = 0.0;
        let e = c.validate().expect_err("a zero share");
        assert!(e.to_string().contains("retrain.hygiene.dominant_share"), "{e}");
    }

    #[test]
    fn unknown_and_mistyped_training_keys_are_named() {
        let e = parse_error("[retrain.train]\nmax_epoch = 1\n");
        assert!(e.contains("unknown field `retrain.train.max_epoch`"), "{e}");
        assert!(e.contains("`max_epochs`"), "the accepted keys are listed: {e}");
        let e = parse_error("[retrain.train.model]\nd_modle = 16\n");
        assert!(e.contains("unknown field `retrain.train.model.d_modle`"), "{e}");
        let e = parse_error("[retrain.train]\nmax_epochs = \"ten\"\n");
        assert!(e.contains("retrain.train.max_epochs"), "{e}");
        let e = parse_error("[retrain]\ncolour = 1\n");
        assert!(e.contains("unknown field `colour`"), "{e}");
    }

    #[test]
    fn a_training_key_in_retrain_says_where_it_moved() {
        let e = parse_error("[retrain]\nmax_epochs = 1\n");
        assert!(e.contains("`retrain.max_epochs` is now `retrain.train.max_epochs`"), "{e}");
        let e = parse_error("[retrain]\ntolerance = 1.0\nd_model = 16\n");
        assert!(e.contains("`retrain.d_model` is now `retrain.train.model.d_model`"), "{e}");
    }

    /// The examples in the crate docs and the README are files the server accepts.
    #[test]
    fn documented_examples_parse() {
        for (doc, text) in [("config.rs", include_str!("config.rs")), ("README", README)] {
            let block: String = text
                .lines()
                .map(|l| l.strip_prefix("//! ").or(l.strip_prefix("//!")).unwrap_or(l))
                .skip_while(|l| *l != "```toml")
                .skip(1)
                .take_while(|l| *l != "```")
                .map(|l| format!("{l}\n"))
                .collect();
            assert!(block.contains("[retrain.train.model]"), "{doc} has its example");
            let f = FileConfig::parse(&block).unwrap_or_else(|e| panic!("{doc}: {e:#}"));
            assert!(f.retrain.and_then(|r| r.train).is_some(), "{doc}");
        }
    }

    const README: &str = include_str!("../README.md");

    #[test]
    fn the_job_time_budget_is_the_only_one() {
        let mut c = Config::for_data_dir("x");
        c.retrain.train = Some(TrainConfig::new(ModelConfig::new()).with_time_budget_s(Some(5)));
        let e = c.validate().expect_err("two budgets");
        assert!(e.to_string().contains("retrain.time_budget_s"), "{e}");
    }
}
