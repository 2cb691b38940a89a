//! The sessionrank service: event and catalog ingestion, retraining, versioned model
//! publishing, and the HTTP API over them (axum + tokio + sqlx).
//!
//! * [`auth`] — ingest keys: who may write events and items;
//! * [`config`] — TOML file, `SESSIONRANK_*` environment variables, flags;
//! * [`store`] — the data-access layer (SQLite by default, PostgreSQL by URL);
//! * [`routes`] — the router ([`app`]) and its handlers; [`error`] — the API's error type;
//! * [`registry`] — published versions, the live one, publish / activate / prune;
//!   [`version`] — one version's directory and its verified bundles;
//! * [`retrain`] — the background retraining job; [`job`] — the job record it keeps;
//! * [`metrics`] — Prometheus text; [`openapi`] — the API description; [`pages`] — the
//!   candidate pages' cache;
//! * [`serve`] — crash recovery, binding, graceful shutdown; [`client`] — the minimal HTTP
//!   client the load tool and the tests use.
//!
//! Layers, each importing only those below it: `auth`, `store` → `config`, `metrics`,
//! `version`, `openapi`, `client`, `pages` (leaves) → `error`, `job`, `registry` → `state` →
//! `retrain` → `routes` → `serve`.

pub mod auth;
pub mod client;
pub mod config;
pub mod error;
pub mod job;
pub mod metrics;
pub mod openapi;
pub mod pages;
pub mod registry;
pub mod retrain;
pub mod routes;
pub mod serve;
pub mod state;
pub mod store;
pub mod version;

pub use config::{Config, RetrainConfig, ServeArgs};
pub use routes::app;
pub use state::AppState;
