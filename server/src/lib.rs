//! The sessionrank service: event and catalog ingestion, retraining, versioned model
//! publishing, and the HTTP API over them (axum + tokio + sqlx).
//!
//! * [`config`] — TOML file, `SESSIONRANK_*` environment variables, flags;
//! * [`store`] — the data-access layer (SQLite by default, PostgreSQL by URL);
//! * [`routes`] — the router ([`app`]) and its handlers; [`error`] — the API's error type;
//! * [`retrain`] — the background retraining job; [`publish`] — versioned bundles on disk;
//! * [`metrics`] — Prometheus text; [`openapi`] — the API description;
//! * [`serve`] — binding, graceful shutdown; [`client`] — the minimal HTTP client the load
//!   tool and the tests use.

pub mod client;
pub mod config;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod publish;
pub mod retrain;
pub mod routes;
pub mod serve;
pub mod state;
pub mod store;

pub use config::{Config, RetrainConfig, ServeArgs};
pub use routes::app;
pub use state::AppState;
