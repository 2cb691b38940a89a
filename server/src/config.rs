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
//! ```
//!
//! The admin token is read from `SESSIONRANK_ADMIN_TOKEN` only (never a flag, which `ps` would
//! show, and never printed: [`Config`]'s `Debug` redacts it).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

/// Environment variable holding the admin bearer token.
pub const ADMIN_TOKEN_ENV: &str = "SESSIONRANK_ADMIN_TOKEN";

/// `sessionrank serve` flags. Each is also an environment variable; both override the file.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "SESSIONRANK_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "SESSIONRANK_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the SQLite database and the published model bundles
    /// [default: ./sessionrank-data]. (Not `SESSIONRANK_DATA_DIR`: that names the datasets.)
    #[arg(long, env = "SESSIONRANK_SERVER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `postgres://…` to share one database between several instances
    /// [default: sqlite://<data-dir>/sessionrank.db].
    #[arg(long, env = "SESSIONRANK_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Static files of the demo page [default: web/dist when it exists].
    #[arg(long, env = "SESSIONRANK_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
    /// Largest request body accepted, in bytes [default: 4 MiB].
    #[arg(long, env = "SESSIONRANK_BODY_LIMIT")]
    pub body_limit: Option<usize>,
    /// Published model versions kept on disk (the live one always is) [default: 5].
    #[arg(long, env = "SESSIONRANK_KEEP_VERSIONS")]
    pub keep_versions: Option<usize>,
    /// Device for retraining [default: auto = wgpu when an adapter exists, else the CPU].
    #[arg(long, env = "SESSIONRANK_TRAIN_DEVICE", value_enum)]
    pub train_device: Option<TrainDevice>,
    /// Seconds a retraining job may train (checked after each epoch) [default: 1800].
    #[arg(long, env = "SESSIONRANK_TRAIN_TIME_BUDGET")]
    pub train_time_budget: Option<u64>,
}

/// Where retraining runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TrainDevice {
    /// burn-wgpu when an adapter initialises, else the CPU.
    #[default]
    Auto,
    /// burn's CPU backend.
    Flex,
    /// burn-wgpu; the job fails if no adapter exists.
    Wgpu,
}

/// How a retraining job trains, evaluates and decides.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrainConfig {
    pub device: TrainDevice,
    /// Name recorded in the manifest (`dataset`).
    pub shop: String,
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub max_len: usize,
    pub dropout: f64,
    pub max_epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub patience: usize,
    pub seed: u64,
    /// Sampled-softmax negatives (0 = full softmax over the catalog).
    pub negatives: usize,
    pub id_dropout: f64,
    /// Stop training after the epoch during which this many seconds passed.
    pub time_budget_s: Option<u64>,
    /// Share of the most recent sessions held out to compare the new and the live model.
    pub holdout_fraction: f64,
    /// At most this many held-out cases are evaluated (the most recent ones).
    pub max_eval_cases: usize,
    /// Validation cases the trainer uses for early stopping.
    pub valid_cases: usize,
    /// Publish only if new MRR@20 ≥ live MRR@20 − tolerance (MRR@20 in percent, as reported).
    pub tolerance: f64,
    /// Refuse to train on fewer sessions than this.
    pub min_sessions: usize,
    /// Also write `model.safetensors` into published bundles.
    pub safetensors: bool,
    /// Test hook: fail the job after this many epochs, as a crash mid-training would.
    pub fail_after_epoch: Option<usize>,
    /// Start from the live model's weights when its architecture matches (the catalog may have
    /// grown: item, category and token rows are matched by id, name and word).
    pub warm_start: bool,
    /// Epochs of a warm-started job (at most `max_epochs`): fine-tuning needs fewer.
    pub warm_start_epochs: usize,
    /// Peak learning rate of a warm-started job: lower, so fine-tuning does not wash out
    /// what the live model learned.
    pub warm_start_lr: f64,
}

impl Default for RetrainConfig {
    fn default() -> Self {
        // The model defaults are the CLI's for datasets without their own (see `defaults_for`).
        Self {
            device: TrainDevice::Auto,
            shop: "shop".into(),
            d_model: 64,
            n_layers: 2,
            n_heads: 2,
            max_len: 30,
            dropout: 0.2,
            max_epochs: 20,
            batch_size: 128,
            lr: 1e-3,
            patience: 2,
            seed: 42,
            negatives: 0,
            id_dropout: 0.1,
            time_budget_s: Some(1800),
            holdout_fraction: 0.1,
            max_eval_cases: 5000,
            valid_cases: 2000,
            tolerance: 0.5,
            min_sessions: 10,
            safetensors: false,
            fail_after_epoch: None,
            warm_start: true,
            warm_start_epochs: 5,
            warm_start_lr: 3e-4,
        }
    }
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
    max_events_per_request: Option<usize>,
    max_items_per_request: Option<usize>,
    request_timeout_s: Option<u64>,
    concurrency_limit: Option<usize>,
    keep_versions: Option<usize>,
    retrain: Option<RetrainConfig>,
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
    pub body_limit: usize,
    pub max_events_per_request: usize,
    pub max_items_per_request: usize,
    pub request_timeout: Duration,
    pub concurrency_limit: usize,
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
            .field("body_limit", &self.body_limit)
            .field("max_events_per_request", &self.max_events_per_request)
            .field("max_items_per_request", &self.max_items_per_request)
            .field("request_timeout", &self.request_timeout)
            .field("concurrency_limit", &self.concurrency_limit)
            .field("keep_versions", &self.keep_versions)
            .field("retrain", &self.retrain)
            .finish()
    }
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
            body_limit: 4 << 20,
            max_events_per_request: 10_000,
            max_items_per_request: 10_000,
            request_timeout: Duration::from_secs(30),
            concurrency_limit: 1024,
            keep_versions: 5,
            retrain: RetrainConfig::default(),
        }
    }

    /// File, then environment and flags (clap has merged those two already).
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("parsing {}", path.display()))?
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
        c.admin_token = std::env::var(ADMIN_TOKEN_ENV).ok().filter(|t| !t.is_empty());
        if let Some(v) = args.body_limit.or(file.body_limit_bytes) {
            c.body_limit = v;
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
        anyhow::ensure!(self.body_limit >= 1024, "body_limit_bytes must be at least 1024");
        anyhow::ensure!(self.keep_versions >= 1, "keep_versions must be at least 1");
        anyhow::ensure!(self.concurrency_limit >= 1, "concurrency_limit must be at least 1");
        let r = &self.retrain;
        anyhow::ensure!(
            r.d_model > 0 && r.n_heads > 0 && r.d_model.is_multiple_of(r.n_heads),
            "retrain.d_model must be a positive multiple of retrain.n_heads"
        );
        anyhow::ensure!(
            r.holdout_fraction > 0.0 && r.holdout_fraction < 0.5,
            "retrain.holdout_fraction must be in (0, 0.5)"
        );
        anyhow::ensure!(
            r.tolerance >= 0.0 && r.tolerance.is_finite(),
            "retrain.tolerance must be >= 0"
        );
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
    fn passwords_are_redacted() {
        assert_eq!(redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("sqlite:///x.db"), "sqlite:///x.db");
    }

    #[test]
    fn file_config_parses() {
        let f: FileConfig = toml::from_str(
            "listen = \"127.0.0.1:9\"\n[retrain]\ndevice = \"flex\"\nmax_epochs = 1\n",
        )
        .expect("valid toml");
        assert_eq!(f.retrain.map(|r| (r.device, r.max_epochs)), Some((TrainDevice::Flex, 1)));
        assert!(toml::from_str::<FileConfig>("lisen = 1").is_err());
    }
}
