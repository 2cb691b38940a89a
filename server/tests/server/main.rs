//! Integration tests of the service, in one test binary (one link step on 2 cores).
//!
//! * `router` — the router without a socket (`tower::ServiceExt::oneshot`): bad input, auth,
//!   idempotency, caching headers, publishing;
//! * `end_to_end` — the real server on 127.0.0.1:0: real data in, retrain, download, score;
//! * `durability` — SIGKILL during a flat-out ingest loses no acknowledged event; SIGKILL
//!   during retraining keeps the live model and leaves no partial files;
//! * `warm_start` — remapping a model onto a grown catalog; a second retraining on real data
//!   starts from the first one's model;
//! * `browser` — the demo page and the plain-JS example in headless Chromium (when built);
//! * `package` — the npm package: the Vite example built from the tarball, and the worker
//!   client's options and failure paths, in headless Chromium;
//! * `postgres` — the same scenarios on PostgreSQL when `SESSIONRANK_TEST_POSTGRES_URL` is set.

mod browser;
mod common;
mod durability;
mod end_to_end;
mod package;
mod postgres;
mod router;
mod warm_start;
