//! Integration tests of the service, in one test binary (one link step on 2 cores).
//!
//! * `router` — the router without a socket (`tower::ServiceExt::oneshot`): bad input, auth,
//!   idempotency, caching headers, publishing;
//! * `end_to_end` — the real server on 127.0.0.1:0: real data in, retrain, download, score;
//! * `durability` — SIGKILL during a flat-out ingest loses no acknowledged event; SIGKILL
//!   during retraining keeps the live model and leaves no partial files;
//! * `warm_start` — remapping a model onto a grown catalog; a second retraining on real data
//!   starts from the first one's model;
//! * `bounded_work` — limits before work, body limits, slow loris, the connection cap, SIGTERM
//!   during a retrain;
//! * `browser` — the demo page and the plain-JS example in headless Chromium (when built);
//! * `failing_store` — the database locked, the disk full, PostgreSQL refusing connections
//!   under a running server: 503s, `/readyz`, nothing acknowledged lost, recovery in place;
//! * `lifecycle` — withdrawn items, session erasure, retention, migrations, `/readyz`;
//! * `package` — the npm package: the Vite example built from the tarball, and the worker
//!   client's options and failure paths, in headless Chromium;
//! * `write_auth` — ingest keys and scopes, CORS, `nosniff` and the pages' CSP;
//! * `review_fixes` — the review's findings: manifest names, idempotency races, a panicking
//!   job, PostgreSQL's `synchronous_commit`, a failed prune after a publish;
//! * `store_work` — item counts kept with every write of events, the candidate pages' cache
//!   (one build at a time), retraining's bounded window read in pages;
//! * `publish` — bundles uploaded with `sessionrank publish` (verified, refused naming the
//!   file), versions in the database served alike by every instance, the single-flight cache;
//! * `scale_out` — three `sessionrank serve` on one PostgreSQL: one retraining job across
//!   them, a kill -9 mid-training taken over after the lease, the same bytes everywhere;
//! * `poisoning` — bot sessions in the stored events are dropped before a retraining trains;
//! * `postgres` — the same scenarios on PostgreSQL when `SESSIONRANK_TEST_POSTGRES_URL` is set.

mod bounded_work;
mod browser;
mod common;
mod durability;
mod end_to_end;
mod failing_store;
mod lifecycle;
mod package;
mod poisoning;
mod postgres;
mod publish;
mod review_fixes;
mod router;
mod scale_out;
mod store_work;
mod warm_start;
mod write_auth;
