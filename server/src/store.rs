//! The data-access layer: one set of queries over sqlx's `Any` driver, run on SQLite (the
//! embedded default, WAL mode, `synchronous = FULL`) or PostgreSQL (several instances behind a
//! load balancer). Only the DDL differs between the two (auto-increment columns); every query
//! uses `$N` placeholders, which both engines accept, except the statements with many values
//! (multi-row inserts, `IN` lists), whose placeholders follow the engine (`value_rows`).
//!
//! Durability: a write returns only after its transaction committed; on SQLite with
//! `synchronous = FULL` that means after the WAL was fsynced, on PostgreSQL after the commit
//! record was flushed (`synchronous_commit = on`, set on every connection). The HTTP layer
//! acknowledges only then.
//!
//! SQLite allows one writer at a time, so its writes go through a pool of one connection (no
//! `SQLITE_BUSY` between our own writers); reads use a separate pool (WAL readers never block).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sessionrank_data::{Catalog, Event, EventKind, Item, MAX_PRICE_LEVEL, Session};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor, Row};
use tokio::sync::{mpsc, oneshot};

/// Storage failures. The API answers those for which [`StoreError::unavailable`] names a
/// cause with 503 (retry later: nothing of the request was stored), the others with 500.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A write the group-commit writer could not make because the database is unavailable
    /// (the cause, then the error as text: one failure answers every request of the group).
    #[error("database unavailable ({0}): {1}")]
    Unavailable(&'static str, String),
    /// The URL names neither SQLite nor PostgreSQL.
    #[error("unsupported database URL (expected sqlite://… or postgres://…)")]
    UnsupportedUrl,
    /// A retraining job's lease is held by another instance now (it expired and was taken).
    #[error("job {0} is no longer held by this instance")]
    LeaseLost(String),
    /// The row to insert exists already (a published version's name is taken).
    #[error("{0} exists already")]
    Exists(String),
    /// A stored value cannot be read back (a bug or a manual edit).
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// Why the database cannot take the request now, when that is the trouble: it cannot be
    /// reached (stopped, restarting, network), it is locked by another process beyond the
    /// busy timeout, or it cannot grow (disk full, read-only). `None` for everything else (a
    /// bug, a constraint, a corrupt row), which retrying would not fix.
    pub fn unavailable(&self) -> Option<&'static str> {
        let e = match self {
            Self::Db(e) => e,
            Self::Unavailable(cause, _) => return Some(cause),
            Self::UnsupportedUrl | Self::Corrupt(_) | Self::LeaseLost(_) | Self::Exists(_) => {
                return None;
            }
        };
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Some("unreachable"),
            sqlx::Error::Database(db) => {
                let code = db.code()?;
                // SQLite: the (extended) result code as a number; its low byte is the primary
                // code. PostgreSQL: the SQLSTATE.
                if let Ok(n) = code.parse::<i64>() {
                    return match n & 0xff {
                        5 | 6 => Some("locked"),        // SQLITE_BUSY, SQLITE_LOCKED
                        13 => Some("full"),             // SQLITE_FULL
                        8 => Some("read-only"),         // SQLITE_READONLY
                        10 | 14 => Some("unreachable"), // SQLITE_IOERR, SQLITE_CANTOPEN
                        _ => None,
                    };
                }
                match code.get(..2) {
                    // connection exception; operator intervention (shutdown, crash recovery)
                    Some("08") | Some("57") => Some("unreachable"),
                    // insufficient resources: disk full; out of memory, too many connections
                    _ if code == "53100" => Some("full"),
                    Some("53") => Some("overloaded"),
                    // lock not available (lock_timeout), deadlock detected
                    _ if code == "55P03" || code == "40P01" => Some("locked"),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// An event as the API accepted it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub session_id: String,
    pub item_id: String,
    pub kind: EventKind,
    /// Seconds since the Unix epoch.
    pub timestamp: i64,
}

/// What happened to an event batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Ingested {
    /// Stored now (the transaction committed).
    Stored,
    /// The idempotency key was used before: nothing was stored; this is what the first request
    /// answered and the sha256 of its body.
    Replayed { request_sha256: String, response: String },
}

/// A published model version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelRow {
    pub version: String,
    pub created_at: i64,
    pub published_at: i64,
}

/// Counts for `/admin/stats`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stats {
    pub events: i64,
    pub items: i64,
    pub models: i64,
}

/// Rows per multi-row INSERT (5 parameters each, far below both engines' limits).
const INSERT_CHUNK: usize = 1000;

/// Largest multi-row INSERT of events. A batch is cut into statements of 256 rows, then of
/// the powers of two its remainder holds, so a handful of statement texts serve every batch
/// size and each is parsed once per connection and kept prepared.
const EVENT_CHUNK: usize = 256;

/// Statement sizes for `n` rows: [`EVENT_CHUNK`] as often as it fits, then the binary
/// decomposition of the rest, largest first (400 → 256, 128, 16).
fn chunk_sizes(n: usize) -> impl Iterator<Item = usize> {
    let full = n / EVENT_CHUNK;
    let rest = n % EVENT_CHUNK;
    std::iter::repeat_n(EVENT_CHUNK, full)
        .chain((0..usize::BITS).rev().map(|b| 1usize << b).filter(move |&p| rest & p != 0))
}

/// `rows` groups of `cols` placeholders, `(…),(…)`: `?` on SQLite, `$1…` on PostgreSQL.
///
/// SQLite finds a named parameter (`$k`) by a linear search of the statement's names, and
/// sqlx asks for the name of every parameter it binds, so binding a statement of `p` named
/// parameters costs O(p²) string compares: with 1000-row inserts that was half of the
/// server's CPU time per ingested event. Plain `?` are bound by position. PostgreSQL accepts
/// only `$k`.
fn value_rows(backend: Backend, rows: usize, cols: usize) -> String {
    let mut sql = String::with_capacity(rows * (cols * 6 + 3));
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        sql.push_str(&params(backend, r * cols, cols));
        sql.push(')');
    }
    sql
}

/// `count` placeholders separated by commas, numbered from `first + 1` on PostgreSQL.
fn params(backend: Backend, first: usize, count: usize) -> String {
    let mut sql = String::with_capacity(count * 6);
    for i in 0..count {
        if i > 0 {
            sql.push(',');
        }
        match backend {
            Backend::Sqlite => sql.push('?'),
            Backend::Postgres => {
                sql.push('$');
                sql.push_str(&(first + i + 1).to_string());
            }
        }
    }
    sql
}

/// Schema changes after the first layout (version 1, the `CREATE TABLE IF NOT EXISTS` set in
/// [`Store::migrate`]), applied in order, each once, in one transaction with its record in
/// `schema_migrations`. The same SQL on both engines. Never edit one that shipped: add one.
const MIGRATIONS: &[(i64, &[&str])] = &[
    // Items can be withdrawn (`DELETE /v1/items/{id}`): kept for the models, off the pages.
    (2, &["ALTER TABLE items ADD COLUMN available BIGINT NOT NULL DEFAULT 1"]),
    // Erasure of a shopper's session (`DELETE /v1/sessions/{id}`) and retention pruning by
    // event time without a scan of the whole table.
    (
        3,
        &[
            "CREATE INDEX IF NOT EXISTS events_by_session ON events (session_id)",
            "CREATE INDEX IF NOT EXISTS events_by_time ON events (ts)",
        ],
    ),
    // Events per item up to the event `counts_seq` (`/v1/candidates` ranks by them instead
    // of counting the events table; [`Store::count_new_events`] adds the newer ones).
    (
        4,
        &[
            "CREATE TABLE IF NOT EXISTS item_counts (item_id TEXT PRIMARY KEY, n BIGINT NOT NULL)",
            "DELETE FROM item_counts",
            "INSERT INTO item_counts (item_id, n) SELECT item_id, COUNT(*) FROM events \
             GROUP BY item_id",
            "DELETE FROM settings WHERE key = 'counts_seq'",
            "INSERT INTO settings (key, value) \
             SELECT 'counts_seq', CAST(COALESCE(MAX(seq), 0) AS TEXT) FROM events",
        ],
    ),
    // Model bundles in the database, so every instance serves every version (issue 18):
    // one row per file of a version (`browser/…` for its browser bundle), the exact bytes
    // served and their sha256 (the ETag). `{blob}` is BLOB on SQLite, BYTEA on PostgreSQL.
    (
        5,
        &["CREATE TABLE IF NOT EXISTS model_files (version TEXT NOT NULL, name TEXT NOT NULL, \
           sha256 TEXT NOT NULL, bytes {blob} NOT NULL, PRIMARY KEY (version, name))"],
    ),
    // The instance holding a running job's lease (issue 18): heartbeats, saves and the
    // publish are conditional on it, so a job taken over after its lease expired cannot be
    // written, or publish, by the instance that lost it.
    (6, &["ALTER TABLE jobs ADD COLUMN owner TEXT"]),
];

/// How long a request waits for a database connection. While the database is down the pool
/// keeps trying to connect for this long; the client then gets a 503 to retry, rather than a
/// connection held open for as long as its load balancer's own timeout.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Key in `settings` of the last event (`seq`) that `item_counts` includes.
const COUNTS_SEQ: &str = "counts_seq";

/// The schema version [`Store::open`] leaves a database at.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Events deleted per transaction by retention: the SQLite writer is free between them.
const PRUNE_CHUNK: i64 = 10_000;

/// How far an event's time may lie after its arrival (clock skew between the shop and the
/// server) for [`Store::load_sessions`]' early stop.
const CLOCK_SLACK_S: i64 = 86_400;

/// Which events a retraining reads ([`Store::load_sessions`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Only events at or after this time (seconds since the Unix epoch).
    pub since: Option<i64>,
    /// At most this many sessions, the most recently active.
    pub max_sessions: usize,
    /// At most this many events per session, its newest.
    pub max_session_events: usize,
    /// Rows per query.
    pub page_rows: usize,
}

impl Default for Window {
    /// Everything (tests, tools).
    fn default() -> Self {
        Self {
            since: None,
            max_sessions: usize::MAX,
            max_session_events: usize::MAX,
            page_rows: 10_000,
        }
    }
}

/// Key of the live-model pointer in `settings`.
const CURRENT_MODEL: &str = "current_model";

#[derive(Clone)]
pub struct Store {
    read: AnyPool,
    write: AnyPool,
    backend: Backend,
    /// SQLite: the group-commit writer task.
    writer: Option<mpsc::Sender<(Batch, oneshot::Sender<Result<Ingested>>)>>,
    /// The cause and time of the last ingest (events, items) that failed because the
    /// database was unavailable; cleared by the next one that succeeds. Readiness reports it:
    /// a nearly full disk can take the readiness probe's one-row write and still refuse
    /// every batch.
    trouble: Arc<Mutex<Option<(&'static str, Instant)>>>,
}

/// One request's events.
#[derive(Debug)]
struct Batch {
    key: Option<String>,
    request_sha256: String,
    events: Vec<NewEvent>,
    response: String,
}

/// A group commit holds at most this many requests / events.
const GROUP_REQUESTS: usize = 256;
const GROUP_EVENTS: usize = 50_000;

/// Commit the batches queued behind each other together.
async fn group_writer(
    pool: AnyPool,
    mut rx: mpsc::Receiver<(Batch, oneshot::Sender<Result<Ingested>>)>,
) {
    while let Some(first) = rx.recv().await {
        let mut events = first.0.events.len();
        let mut group = vec![first];
        while group.len() < GROUP_REQUESTS && events < GROUP_EVENTS {
            match rx.try_recv() {
                Ok(next) => {
                    events += next.0.events.len();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        let (batches, replies): (Vec<Batch>, Vec<_>) = group.into_iter().unzip();
        match write_group(&pool, Backend::Sqlite, &batches).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            // Nothing of the group was stored: retry each batch alone, so one failure does
            // not fail the others.
            Err(e) if batches.len() > 1 => {
                tracing::warn!(
                    "group commit of {} batches failed ({e}); retrying one by one",
                    batches.len()
                );
                for (batch, reply) in batches.iter().zip(replies) {
                    let r = write_group(&pool, Backend::Sqlite, std::slice::from_ref(batch))
                        .await
                        .and_then(|mut o| {
                            o.pop().ok_or_else(|| StoreError::Corrupt("no outcome".into()))
                        });
                    let _ = reply.send(r);
                }
            }
            Err(e) => {
                let cause = e.unavailable();
                for reply in replies {
                    let message = format!("storing events: {e}");
                    let _ = reply.send(Err(match cause {
                        Some(cause) => StoreError::Unavailable(cause, message),
                        None => StoreError::Corrupt(message),
                    }));
                }
            }
        }
    }
}

/// Store `batches` in one transaction; one outcome per batch.
async fn write_group(pool: &AnyPool, backend: Backend, batches: &[Batch]) -> Result<Vec<Ingested>> {
    let mut tx = pool.begin().await?;
    let now = now_s();
    let mut stored = Vec::with_capacity(batches.len());
    let mut rows: Vec<&NewEvent> = Vec::new();
    for b in batches {
        let fresh = match &b.key {
            Some(key) => {
                sqlx::query(
                    "INSERT INTO idempotency_keys (key, request_sha256, response, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (key) DO NOTHING",
                )
                .bind(key.as_str())
                .bind(b.request_sha256.as_str())
                .bind(b.response.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1
            }
            None => true,
        };
        if fresh {
            rows.extend(b.events.iter());
        }
        stored.push(fresh);
    }
    let mut rest = rows.as_slice();
    for size in chunk_sizes(rest.len()) {
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let sql = format!(
            "INSERT INTO events (session_id, item_id, kind, ts, received_at) VALUES {}",
            value_rows(backend, size, 5)
        );
        let mut q = sqlx::query(&sql);
        for e in chunk {
            q = q
                .bind(e.session_id.as_str())
                .bind(e.item_id.as_str())
                .bind(e.kind as i64)
                .bind(e.timestamp)
                .bind(now);
        }
        q.execute(&mut *tx).await?;
    }
    // A replay's first answer is read in the same transaction that found its key taken, so
    // the key cannot be purged (or its row change) between the two.
    let mut out = Vec::with_capacity(batches.len());
    for (b, fresh) in batches.iter().zip(stored) {
        match (&b.key, fresh) {
            (Some(key), false) => {
                let row = sqlx::query(
                    "SELECT request_sha256, response FROM idempotency_keys WHERE key = $1",
                )
                .bind(key.as_str())
                .fetch_one(&mut *tx)
                .await?;
                out.push(Ingested::Replayed {
                    request_sha256: row.try_get(0)?,
                    response: row.try_get(1)?,
                });
            }
            _ => out.push(Ingested::Stored),
        }
    }
    tx.commit().await?;
    Ok(out)
}

/// Add `counts` (per item id; negative: events deleted) to `item_counts`. Ids in sorted
/// order, so concurrent transactions on PostgreSQL lock the rows in the same order.
async fn add_item_counts(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    counts: BTreeMap<&str, i64>,
) -> Result<()> {
    let counts: Vec<(&str, i64)> = counts.into_iter().filter(|(_, n)| *n != 0).collect();
    let mut rest = counts.as_slice();
    for size in chunk_sizes(rest.len()) {
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let sql = format!(
            "INSERT INTO item_counts (item_id, n) VALUES {} \
             ON CONFLICT (item_id) DO UPDATE SET n = item_counts.n + excluded.n",
            value_rows(backend, size, 2)
        );
        let mut q = sqlx::query(&sql);
        for (item, n) in chunk {
            q = q.bind(*item).bind(*n);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Lock the counts' cursor (`counts_seq`) for the rest of `tx` and read it: counting new
/// events and deleting events take it first, so a deleted event is either subtracted from
/// the counts or never counted, never both or neither.
async fn lock_counts_seq(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<i64> {
    sqlx::query("UPDATE settings SET value = value WHERE key = $1")
        .bind(COUNTS_SEQ)
        .execute(&mut **tx)
        .await?;
    let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
        .bind(COUNTS_SEQ)
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        Some(r) => {
            let text: String = r.try_get(0)?;
            text.parse().map_err(|_| StoreError::Corrupt(format!("{COUNTS_SEQ} = {text}")))
        }
        None => Err(StoreError::Corrupt(format!("no {COUNTS_SEQ} setting"))),
    }
}

/// Subtract deleted events (rows of `item_id, seq`) that the counts include (`seq` up to
/// `counted`) from `item_counts`.
async fn subtract_deleted(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    rows: &[sqlx::any::AnyRow],
    counted: i64,
) -> Result<()> {
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    for row in rows {
        if row.try_get::<i64, _>(1)? <= counted {
            *counts.entry(row.try_get::<String, _>(0)?).or_default() -= 1;
        }
    }
    add_item_counts(tx, backend, counts.iter().map(|(k, n)| (k.as_str(), *n)).collect()).await
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).finish()
    }
}

pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Connect and create the schema if it does not exist yet.
    pub async fn open(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let options = AnyConnectOptions::from_str(url)?;
        let store = match backend {
            Backend::Sqlite => {
                let pool = |max: u32| {
                    AnyPoolOptions::new()
                        .max_connections(max)
                        .acquire_timeout(ACQUIRE_TIMEOUT)
                        .after_connect(|conn, _| {
                            Box::pin(async move {
                                for pragma in [
                                    "PRAGMA journal_mode = WAL",
                                    "PRAGMA synchronous = FULL",
                                    "PRAGMA busy_timeout = 10000",
                                ] {
                                    sqlx::query(pragma).execute(&mut *conn).await?;
                                }
                                Ok(())
                            })
                        })
                };
                let write = pool(1).connect_with(options.clone()).await?;
                let read = pool(4).connect_with(options).await?;
                let (tx, rx) = mpsc::channel(1024);
                tokio::spawn(group_writer(write.clone(), rx));
                Self { read, write, backend, writer: Some(tx), trouble: Arc::default() }
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    // An acknowledged write must survive a crash of the database server, whatever
                    // the database's or role's default says.
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            sqlx::query("SET synchronous_commit = on").execute(&mut *conn).await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?;
                Self {
                    read: pool.clone(),
                    write: pool,
                    backend,
                    writer: None,
                    trouble: Arc::default(),
                }
            }
        };
        store.migrate().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    async fn migrate(&self) -> Result<()> {
        let (serial, blob) = match self.backend {
            Backend::Sqlite => ("INTEGER PRIMARY KEY", "BLOB"),
            Backend::Postgres => ("BIGSERIAL PRIMARY KEY", "BYTEA"),
        };
        let statements = [
            format!(
                "CREATE TABLE IF NOT EXISTS items (seq {serial}, id TEXT NOT NULL UNIQUE, text TEXT NOT NULL, \
                 category TEXT, price_level BIGINT, updated_at BIGINT NOT NULL)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS events (seq {serial}, session_id TEXT NOT NULL, item_id TEXT NOT NULL, \
                 kind BIGINT NOT NULL, ts BIGINT NOT NULL, received_at BIGINT NOT NULL)"
            ),
            "CREATE TABLE IF NOT EXISTS idempotency_keys (key TEXT PRIMARY KEY, request_sha256 TEXT NOT NULL, \
             response TEXT NOT NULL, created_at BIGINT NOT NULL)"
                .into(),
            "CREATE TABLE IF NOT EXISTS models (version TEXT PRIMARY KEY, created_at BIGINT NOT NULL, \
             published_at BIGINT NOT NULL, manifest TEXT NOT NULL)"
                .into(),
            "CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)".into(),
            // `slot` is 1 while a job runs and NULL afterwards: the UNIQUE constraint is what
            // makes "one retraining job at a time" hold across instances.
            "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, slot BIGINT UNIQUE, state TEXT NOT NULL, \
             created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, record TEXT NOT NULL)"
                .into(),
        ];
        for s in statements {
            self.write.execute(s.as_str()).await?;
        }
        self.write
            .execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, \
                 applied_at BIGINT NOT NULL)",
            )
            .await?;
        for (version, statements) in MIGRATIONS {
            let mut tx = self.write.begin().await?;
            if self.backend == Backend::Postgres {
                // Instances starting together: one migrates, the others wait and then skip.
                sqlx::query("LOCK TABLE schema_migrations IN SHARE ROW EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await?;
            }
            let done = sqlx::query("SELECT 1 FROM schema_migrations WHERE version = $1")
                .bind(*version)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if !done {
                for statement in *statements {
                    sqlx::query(&statement.replace("{blob}", blob)).execute(&mut *tx).await?;
                }
                sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                    .bind(*version)
                    .bind(now_s())
                    .execute(&mut *tx)
                    .await?;
                tracing::info!("database schema migrated to version {version}");
            }
            tx.commit().await?;
        }
        Ok(())
    }

    /// The newest schema migration applied.
    pub async fn schema_version(&self) -> Result<i64> {
        let row =
            sqlx::query("SELECT MAX(version) FROM schema_migrations").fetch_one(&self.read).await?;
        Ok(row.try_get::<Option<i64>, _>(0)?.unwrap_or(1))
    }

    /// Run one statement without parameters (administration, tests).
    pub async fn execute_raw(&self, sql: &str) -> Result<()> {
        self.write.execute(sql).await?;
        Ok(())
    }

    /// The first column of the first row of `sql`, as text (administration, tests).
    pub async fn query_text(&self, sql: &str) -> Result<Option<String>> {
        let row = sqlx::query(sql).fetch_optional(&self.write).await?;
        Ok(row.map(|r| r.try_get::<String, _>(0)).transpose()?)
    }

    /// A one-row write through the write pool (readiness): on a full disk, a read-only or
    /// locked database, or a database that went away, this fails where `SELECT 1` may not.
    pub async fn probe_write(&self) -> Result<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ('readiness_probe', $1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(now_s().to_string())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// `SELECT 1` (health check).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    // --- events -------------------------------------------------------------------------------

    /// Store a batch in one transaction. With an idempotency key the key is recorded in the same
    /// transaction, so a batch is either stored together with its key or not at all; a key seen
    /// before stores nothing and returns the first answer.
    ///
    /// On SQLite, batches that arrive while a commit is in progress are committed together
    /// (group commit: one fsync for many requests, each still acknowledged only after it).
    pub async fn ingest_events(
        &self,
        key: Option<String>,
        request_sha256: String,
        events: Vec<NewEvent>,
        response: String,
    ) -> Result<Ingested> {
        let r = self.ingest_batch(key, request_sha256, events, response).await;
        self.noted(r)
    }

    /// Remember (or forget) that ingest failed for want of the database.
    fn noted<T>(&self, r: Result<T>) -> Result<T> {
        let cause = r.as_ref().err().and_then(StoreError::unavailable);
        if let Ok(mut t) = self.trouble.lock() {
            match (&r, cause) {
                (Ok(_), _) => *t = None,
                (Err(_), Some(cause)) => *t = Some((cause, Instant::now())),
                (Err(_), None) => {}
            }
        }
        r
    }

    /// Why the last ingest failed, if it failed for want of the database within `recent` and
    /// none has succeeded since.
    pub fn write_trouble(&self, recent: Duration) -> Option<&'static str> {
        let t = self.trouble.lock().ok()?;
        t.filter(|(_, at)| at.elapsed() < recent).map(|(cause, _)| cause)
    }

    async fn ingest_batch(
        &self,
        key: Option<String>,
        request_sha256: String,
        events: Vec<NewEvent>,
        response: String,
    ) -> Result<Ingested> {
        let batch = Batch { key, request_sha256, events, response };
        match &self.writer {
            Some(writer) => {
                let (reply, answer) = oneshot::channel();
                writer
                    .send((batch, reply))
                    .await
                    .map_err(|_| StoreError::Corrupt("the writer task stopped".into()))?;
                answer.await.map_err(|_| StoreError::Corrupt("the writer task stopped".into()))?
            }
            None => {
                let mut out =
                    write_group(&self.write, self.backend, std::slice::from_ref(&batch)).await?;
                out.pop().ok_or_else(|| StoreError::Corrupt("no outcome".into()))
            }
        }
    }

    /// Erase a session: every event of `session_id`, in one transaction with the item
    /// counts. The count deleted.
    pub async fn delete_session(&self, session_id: &str) -> Result<u64> {
        let mut tx = self.write.begin().await?;
        let counted = lock_counts_seq(&mut tx).await?;
        let rows = sqlx::query("DELETE FROM events WHERE session_id = $1 RETURNING item_id, seq")
            .bind(session_id)
            .fetch_all(&mut *tx)
            .await?;
        subtract_deleted(&mut tx, self.backend, &rows, counted).await?;
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    /// Delete events whose time (`ts`) is before `before_s` (retention), 10,000 per
    /// transaction with the item counts. The count deleted.
    pub async fn delete_events_before(&self, before_s: i64) -> Result<u64> {
        let mut deleted = 0;
        loop {
            let mut tx = self.write.begin().await?;
            let counted = lock_counts_seq(&mut tx).await?;
            let rows = sqlx::query(
                "DELETE FROM events WHERE seq IN \
                 (SELECT seq FROM events WHERE ts < $1 LIMIT $2) RETURNING item_id, seq",
            )
            .bind(before_s)
            .bind(PRUNE_CHUNK)
            .fetch_all(&mut *tx)
            .await?;
            subtract_deleted(&mut tx, self.backend, &rows, counted).await?;
            tx.commit().await?;
            deleted += rows.len() as u64;
            if (rows.len() as i64) < PRUNE_CHUNK {
                return Ok(deleted);
            }
        }
    }

    /// Add the events stored since the last call to `item_counts`: one range scan of the
    /// new events by `seq` and one update per item they touch, for however many ingest
    /// transactions they came in (a counter updated by every transaction rewrote hundreds of
    /// scattered pages per commit: it halved SQLite's ingest). The number of events added.
    ///
    /// On PostgreSQL an event's `seq` is drawn before its transaction commits, so a newer one
    /// may commit first: the upper bound is read under a SHARE lock on `events`, which waits
    /// for the writing transactions in flight (and holds new ones for that instant), so every
    /// event up to it is committed or gone.
    pub async fn count_new_events(&self) -> Result<u64> {
        let safe_max = match self.backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let mut tx = self.write.begin().await?;
                // Not behind a long maintenance lock (an anti-wraparound vacuum): the counts
                // are then a little older, and the next call tries again.
                sqlx::query("SET LOCAL lock_timeout = '2s'").execute(&mut *tx).await?;
                if let Err(e) =
                    sqlx::query("LOCK TABLE events IN SHARE MODE").execute(&mut *tx).await
                {
                    tracing::warn!("counting new events later: {e}");
                    return Ok(0);
                }
                let row = sqlx::query("SELECT MAX(seq) FROM events").fetch_one(&mut *tx).await?;
                tx.commit().await?;
                Some(row.try_get::<Option<i64>, _>(0)?.unwrap_or(0))
            }
        };
        let mut tx = self.write.begin().await?;
        let counted = lock_counts_seq(&mut tx).await?;
        let upto = match safe_max {
            Some(max) => max,
            None => sqlx::query("SELECT MAX(seq) FROM events")
                .fetch_one(&mut *tx)
                .await?
                .try_get::<Option<i64>, _>(0)?
                .unwrap_or(0),
        };
        if upto <= counted {
            return Ok(0);
        }
        let rows = sqlx::query(
            "SELECT item_id, COUNT(*) FROM events WHERE seq > $1 AND seq <= $2 GROUP BY item_id",
        )
        .bind(counted)
        .bind(upto)
        .fetch_all(&mut *tx)
        .await?;
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        for row in &rows {
            counts.insert(row.try_get(0)?, row.try_get(1)?);
        }
        let added = counts.values().sum::<i64>();
        add_item_counts(
            &mut tx,
            self.backend,
            counts.iter().map(|(k, n)| (k.as_str(), *n)).collect(),
        )
        .await?;
        set_setting(&mut tx, COUNTS_SEQ, &upto.to_string()).await?;
        tx.commit().await?;
        Ok(u64::try_from(added).unwrap_or(0))
    }

    /// Events stored for `session_id`.
    pub async fn session_events(&self, session_id: &str) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM events WHERE session_id = $1")
            .bind(session_id)
            .fetch_one(&self.read)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Forget idempotency keys older than `max_age_s`.
    pub async fn purge_idempotency_keys(&self, max_age_s: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(now_s() - max_age_s)
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected())
    }

    /// The most recent sessions within `window`, grouped (time order, ties in arrival order),
    /// with item ids mapped through `catalog` (events of items it lacks are skipped), ordered
    /// by their last event's time.
    ///
    /// Events are read newest first by arrival (`seq`, the primary key) in pages of
    /// `window.page_rows`, so memory holds one page and the sessions kept, never the table:
    /// at most `max_sessions` sessions (the first ones met going back in time, i.e. the most
    /// recently active) of at most `max_session_events` events each (their newest). Reading
    /// stops at the first event received more than a day before `since` (an event cannot
    /// have happened after it was received, clocks allowing a day), or, once `max_sessions`
    /// sessions are kept, at the first event received more than a day before the last of
    /// them was met: a session older than that is not one of the most recent, and a kept
    /// session's events older than that are left out.
    pub async fn load_sessions(&self, catalog: &Catalog, window: &Window) -> Result<Vec<Session>> {
        type Kept = Vec<(i64, i64, Event)>;
        let mut by_session: HashMap<String, Kept> = HashMap::new();
        let mut full_since: Option<i64> = None;
        let mut cursor = i64::MAX;
        let page = i64::try_from(window.page_rows.max(1)).unwrap_or(i64::MAX);
        'pages: loop {
            let rows = sqlx::query(
                "SELECT session_id, item_id, kind, ts, seq, received_at FROM events \
                 WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
            )
            .bind(cursor)
            .bind(page)
            .fetch_all(&self.read)
            .await?;
            let last_page = (rows.len() as i64) < page;
            for row in rows {
                let seq: i64 = row.try_get(4)?;
                let received_at: i64 = row.try_get(5)?;
                cursor = seq;
                if window.since.is_some_and(|since| received_at < since - CLOCK_SLACK_S)
                    || full_since.is_some_and(|t| received_at < t - CLOCK_SLACK_S)
                {
                    break 'pages;
                }
                let ts: i64 = row.try_get(3)?;
                if window.since.is_some_and(|since| ts < since) {
                    continue;
                }
                let item: String = row.try_get(1)?;
                let Some(idx) = catalog.lookup(&item) else { continue };
                let kind = kind_of(row.try_get(2)?)?;
                let session: String = row.try_get(0)?;
                let event = (ts, seq, Event { item: idx, kind, timestamp: Some(ts) });
                match by_session.get_mut(&session) {
                    Some(events) if events.len() < window.max_session_events => events.push(event),
                    Some(_) => {}
                    None if full_since.is_none() && window.max_session_events > 0 => {
                        by_session.insert(session, vec![event]);
                        if by_session.len() >= window.max_sessions {
                            full_since = Some(received_at);
                        }
                    }
                    None => {}
                }
            }
            if last_page {
                break;
            }
        }
        let mut sessions: Vec<(i64, i64, Session)> = by_session
            .into_iter()
            .map(|(id, mut events)| {
                events.sort_by_key(|(ts, seq, _)| (*ts, *seq));
                let (last_ts, last_seq) =
                    events.last().map(|(t, s, _)| (*t, *s)).unwrap_or_default();
                (
                    last_ts,
                    last_seq,
                    Session { id, events: events.into_iter().map(|(_, _, e)| e).collect() },
                )
            })
            .collect();
        sessions.sort_by_key(|(ts, seq, _)| (*ts, *seq));
        Ok(sessions.into_iter().map(|(_, _, s)| s).collect())
    }

    // --- items --------------------------------------------------------------------------------

    /// Insert or update items in one transaction. An item keeps its catalog position (`seq`)
    /// across updates, so id rows stay stable between models.
    pub async fn upsert_items(&self, items: &[Item]) -> Result<()> {
        let r = self.upsert_items_now(items).await;
        self.noted(r)
    }

    async fn upsert_items_now(&self, items: &[Item]) -> Result<()> {
        let mut tx = self.write.begin().await?;
        let now = now_s();
        for chunk in items.chunks(INSERT_CHUNK) {
            let mut sql = format!(
                "INSERT INTO items (id, text, category, price_level, updated_at) VALUES {}",
                value_rows(self.backend, chunk.len(), 5)
            );
            sql.push_str(
                " ON CONFLICT (id) DO UPDATE SET text = excluded.text, \
                 category = excluded.category, price_level = excluded.price_level, \
                 updated_at = excluded.updated_at, available = 1",
            );
            let mut q = sqlx::query(&sql).persistent(false);
            for it in chunk {
                q = q
                    .bind(it.id.as_str())
                    .bind(it.text.as_str())
                    .bind(it.category.clone())
                    .bind(it.price_level.map(i64::from))
                    .bind(now);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The catalog in insertion order.
    pub async fn load_catalog(&self) -> Result<Catalog> {
        let rows = sqlx::query("SELECT id, text, category, price_level FROM items ORDER BY seq")
            .fetch_all(&self.read)
            .await?;
        let mut catalog = Catalog::new();
        for row in rows {
            catalog.upsert(item_of_row(&row)?);
        }
        Ok(catalog)
    }

    /// Withdraw an item (`available = 0`): it stays in the catalog, so models keep its row and
    /// its events, but candidate pages leave it out until a `PUT` brings it back. `false`
    /// when no such item is stored.
    pub async fn withdraw_item(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("UPDATE items SET available = 0, updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now_s())
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// The `limit` available catalog items with the most events, most first (ties and items
    /// without events in catalog order): the demo's stand-in for a shop's upstream retrieval.
    ///
    /// Ranked from `item_counts` (one row per item with events) as of the last
    /// [`Store::count_new_events`], so the cost follows the catalog's size, not the number of
    /// events (and the caller caches the answer, [`crate::pages`]).
    pub async fn popular_items(&self, limit: usize) -> Result<Vec<(Item, i64)>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = sqlx::query(
            "SELECT i.id, i.text, i.category, i.price_level, c.n FROM item_counts c \
             JOIN items i ON i.id = c.item_id WHERE c.n > 0 AND i.available = 1 \
             ORDER BY c.n DESC, i.seq LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push((item_of_row(&row)?, row.try_get::<i64, _>(4)?));
        }
        if (out.len() as i64) < limit {
            // Top up with items nobody has touched yet, in catalog order.
            let have: HashSet<String> = out.iter().map(|(it, _)| it.id.clone()).collect();
            let rows = sqlx::query(
                "SELECT id, text, category, price_level FROM items WHERE available = 1 \
                 ORDER BY seq LIMIT $1",
            )
            .bind(limit.saturating_add(have.len() as i64))
            .fetch_all(&self.read)
            .await?;
            for row in rows {
                let item = item_of_row(&row)?;
                if (out.len() as i64) < limit && !have.contains(&item.id) {
                    out.push((item, 0));
                }
            }
        }
        Ok(out)
    }

    pub async fn item_ids(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT id FROM items").fetch_all(&self.read).await?;
        rows.iter().map(|r| r.try_get::<String, _>(0).map_err(StoreError::from)).collect()
    }

    /// The stored items among `ids` (with their content), by id; ids not stored are absent.
    pub async fn items_by_id(&self, ids: &[&str]) -> Result<HashMap<String, Item>> {
        let mut found = HashMap::new();
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT id, text, category, price_level FROM items WHERE id IN ({})",
                params(self.backend, 0, chunk.len())
            );
            let mut q = sqlx::query(&sql).persistent(false);
            for id in chunk {
                q = q.bind(*id);
            }
            for row in q.fetch_all(&self.read).await? {
                let item = item_of_row(&row)?;
                found.insert(item.id.clone(), item);
            }
        }
        Ok(found)
    }

    /// Which of `ids` exist.
    pub async fn existing_items(&self, ids: &[&str]) -> Result<HashSet<String>> {
        let mut found = HashSet::new();
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT id FROM items WHERE id IN ({})",
                params(self.backend, 0, chunk.len())
            );
            let mut q = sqlx::query(&sql).persistent(false);
            for id in chunk {
                q = q.bind(*id);
            }
            for row in q.fetch_all(&self.read).await? {
                found.insert(row.try_get(0)?);
            }
        }
        Ok(found)
    }

    pub async fn stats(&self) -> Result<Stats> {
        let count = |table: &'static str| async move {
            let row =
                sqlx::query(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&self.read).await?;
            Ok::<i64, StoreError>(row.try_get(0)?)
        };
        Ok(Stats {
            events: count("events").await?,
            items: count("items").await?,
            models: count("models").await?,
        })
    }

    // --- models -------------------------------------------------------------------------------

    /// Record a published version — its row, every file (`files`: name, bytes; the sha256 is
    /// computed here) and, with `activate`, the live pointer — in one transaction, so another
    /// instance sees all of it or nothing. [`StoreError::Exists`] when the version is taken.
    ///
    /// `fence` (a retraining job's id and owner): the transaction also renews that job's lease
    /// and commits only if the job still holds it ([`StoreError::LeaseLost`] otherwise), so a
    /// job another instance took over never publishes.
    pub async fn insert_model(
        &self,
        version: &str,
        created_at: i64,
        manifest_json: &str,
        files: &[(String, bytes::Bytes)],
        activate: bool,
        fence: Option<(&str, &str)>,
    ) -> Result<()> {
        let mut conn = self.write.acquire().await?;
        let outcome = async {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            if let Some((job, owner)) = fence {
                let held = sqlx::query(
                    "UPDATE jobs SET updated_at = $3 WHERE id = $1 AND owner = $2 AND slot = 1",
                )
                .bind(job)
                .bind(owner)
                .bind(now_s())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if held == 0 {
                    return Err(StoreError::LeaseLost(job.to_string()));
                }
            }
            let taken = sqlx::query("SELECT 1 FROM models WHERE version = $1")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if taken {
                return Err(StoreError::Exists(format!("model version `{version}`")));
            }
            sqlx::query(
                "INSERT INTO models (version, created_at, published_at, manifest) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(version)
            .bind(created_at)
            .bind(now_s())
            .bind(manifest_json)
            .execute(&mut *tx)
            .await?;
            insert_files(&mut tx, version, files).await?;
            if activate {
                set_setting(&mut tx, CURRENT_MODEL, version).await?;
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        // A write of megabytes that failed half-way (SQLite rolls the transaction back by
        // itself on a full disk) may leave the connection out of step with the driver's idea
        // of it: it is closed rather than given to the next writer.
        if let Err(StoreError::Db(_) | StoreError::Unavailable(..)) = &outcome {
            conn.close_on_drop();
        }
        outcome
    }

    /// Store the files of a version recorded before bundles lived in the database (read from
    /// the models directory of the instance that published it); files already stored stay.
    pub async fn backfill_model_files(
        &self,
        version: &str,
        files: &[(String, bytes::Bytes)],
    ) -> Result<()> {
        let mut tx = self.write.begin().await?;
        insert_files(&mut tx, version, files).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every stored file of a version: name, sha256 as stored, bytes. Empty when the version
    /// has no files in the database (unknown, or published before they were stored there).
    pub async fn model_files(&self, version: &str) -> Result<Vec<(String, String, Vec<u8>)>> {
        let rows = sqlx::query(
            "SELECT name, sha256, bytes FROM model_files WHERE version = $1 ORDER BY name",
        )
        .bind(version)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))).collect()
    }

    pub async fn set_current_model(&self, version: &str) -> Result<()> {
        let mut tx = self.write.begin().await?;
        set_setting(&mut tx, CURRENT_MODEL, version).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn current_model(&self) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(CURRENT_MODEL)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| r.try_get::<String, _>(0)).transpose()?)
    }

    /// Published versions, newest first.
    pub async fn models(&self) -> Result<Vec<ModelRow>> {
        let rows = sqlx::query("SELECT version, created_at, published_at FROM models ORDER BY published_at DESC, created_at DESC, version DESC")
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| -> Result<ModelRow> {
                Ok(ModelRow {
                    version: r.try_get(0)?,
                    created_at: r.try_get(1)?,
                    published_at: r.try_get(2)?,
                })
            })
            .collect()
    }

    pub async fn model_exists(&self, version: &str) -> Result<bool> {
        Ok(sqlx::query("SELECT 1 FROM models WHERE version = $1")
            .bind(version)
            .fetch_optional(&self.read)
            .await?
            .is_some())
    }

    /// Forget a version: its row and its files, together.
    pub async fn delete_model(&self, version: &str) -> Result<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query("DELETE FROM model_files WHERE version = $1")
            .bind(version)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM models WHERE version = $1")
            .bind(version)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    // --- jobs ---------------------------------------------------------------------------------

    /// Insert a running job held by `owner` unless one runs already; `Err(id)` names the
    /// running one. A running job whose lease expired (no heartbeat for `lease_s` seconds) is
    /// marked failed first, when nobody took it over in between.
    pub async fn claim_job<J: Serialize + for<'de> Deserialize<'de>>(
        &self,
        id: &str,
        record: &J,
        owner: &str,
        lease_s: i64,
        fail_stale: impl Fn(J) -> J,
    ) -> Result<std::result::Result<(), String>> {
        let record = to_json(record)?;
        loop {
            self.fail_running_jobs(Some(lease_s), &fail_stale).await?;
            let now = now_s();
            let inserted = sqlx::query(
                "INSERT INTO jobs (id, slot, state, created_at, updated_at, record, owner) \
                 VALUES ($1, 1, 'running', $2, $2, $3, $4) ON CONFLICT (slot) DO NOTHING",
            )
            .bind(id)
            .bind(now)
            .bind(record.as_str())
            .bind(owner)
            .execute(&self.write)
            .await?
            .rows_affected();
            if inserted == 1 {
                return Ok(Ok(()));
            }
            // Another job holds the slot, unless it finished in between: then try again.
            if let Some(id) = self.running_job_id().await? {
                return Ok(Err(id));
            }
        }
    }

    /// The id of the job holding the slot, whichever instance runs it.
    pub async fn running_job_id(&self) -> Result<Option<String>> {
        let row =
            sqlx::query("SELECT id FROM jobs WHERE slot = 1").fetch_optional(&self.write).await?;
        Ok(row.map(|r| r.try_get::<String, _>(0)).transpose()?)
    }

    /// Mark running jobs failed: all of them (`None`, at startup of a single SQLite server), or
    /// those whose lease expired `older_than_s` ago. Each only if it is still as read (a job
    /// renewed or taken over in between is left alone).
    pub async fn fail_running_jobs<J: Serialize + for<'de> Deserialize<'de>>(
        &self,
        older_than_s: Option<i64>,
        fail: impl Fn(J) -> J,
    ) -> Result<usize> {
        let cutoff = older_than_s.map(|s| now_s() - s).unwrap_or(i64::MAX);
        let mut failed = 0;
        for (id, job, updated_at) in self.expired_jobs::<J>(cutoff).await? {
            let r = sqlx::query(
                "UPDATE jobs SET slot = NULL, state = 'failed', updated_at = $2, record = $3 \
                 WHERE id = $1 AND slot = 1 AND updated_at = $4",
            )
            .bind(id.as_str())
            .bind(now_s())
            .bind(to_json(&fail(job))?)
            .bind(updated_at)
            .execute(&self.write)
            .await?;
            failed += r.rows_affected() as usize;
        }
        Ok(failed)
    }

    /// Running jobs last renewed before `cutoff` (their instance stopped, or lost the
    /// database): id, record, and the `updated_at` a conditional update compares with.
    pub async fn expired_jobs<J: for<'de> Deserialize<'de>>(
        &self,
        cutoff: i64,
    ) -> Result<Vec<(String, J, i64)>> {
        let rows = sqlx::query(
            "SELECT id, record, updated_at FROM jobs WHERE slot = 1 AND updated_at < $1",
        )
        .bind(cutoff)
        .fetch_all(&self.write)
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get(0)?;
                let record: String = row.try_get(1)?;
                let job = serde_json::from_str(&record)
                    .map_err(|e| StoreError::Corrupt(format!("job {id}: {e}")))?;
                Ok((id, job, row.try_get(2)?))
            })
            .collect()
    }

    /// Take over a job whose lease expired: `owner` holds it from now, if it is still as read
    /// (`updated_at`), so of several instances trying at once exactly one gets it.
    pub async fn take_over_job<J: Serialize>(
        &self,
        id: &str,
        updated_at: i64,
        owner: &str,
        record: &J,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE jobs SET owner = $2, updated_at = $3, record = $4 \
             WHERE id = $1 AND slot = 1 AND updated_at = $5",
        )
        .bind(id)
        .bind(owner)
        .bind(now_s())
        .bind(to_json(record)?)
        .bind(updated_at)
        .execute(&self.write)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Store a job's new state (this also renews its lease); `running = false` frees the slot.
    /// Only while `owner` holds the job: `false` when another instance took it over.
    pub async fn update_job<J: Serialize>(
        &self,
        id: &str,
        state: &str,
        running: bool,
        record: &J,
        owner: &str,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE jobs SET slot = $2, state = $3, updated_at = $4, record = $5 \
             WHERE id = $1 AND owner = $6",
        )
        .bind(id)
        .bind(running.then_some(1i64))
        .bind(state)
        .bind(now_s())
        .bind(to_json(record)?)
        .bind(owner)
        .execute(&self.write)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn job<J: for<'de> Deserialize<'de>>(&self, id: &str) -> Result<Option<J>> {
        let row = sqlx::query("SELECT record FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        match row {
            Some(r) => {
                let record: String = r.try_get(0)?;
                Ok(Some(
                    serde_json::from_str(&record)
                        .map_err(|e| StoreError::Corrupt(format!("job {id}: {e}")))?,
                ))
            }
            None => Ok(None),
        }
    }
}

/// Insert a version's files (name, bytes), each with its sha256; a file already stored stays.
async fn insert_files(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    version: &str,
    files: &[(String, bytes::Bytes)],
) -> Result<()> {
    for (name, bytes) in files {
        sqlx::query(
            "INSERT INTO model_files (version, name, sha256, bytes) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (version, name) DO NOTHING",
        )
        .bind(version)
        .bind(name.as_str())
        .bind(sessionrank_core::bundle::sha256_hex(bytes))
        .bind(bytes.as_ref())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn set_setting(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    key: &str,
    value: &str,
) -> Result<()> {
    sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
        .bind(key)
        .bind(value)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn kind_of(k: i64) -> Result<EventKind> {
    match k {
        0 => Ok(EventKind::View),
        1 => Ok(EventKind::AddToCart),
        2 => Ok(EventKind::Purchase),
        other => Err(StoreError::Corrupt(format!("event kind {other}"))),
    }
}

/// An item from a row whose first four columns are `id, text, category, price_level`.
fn item_of_row(row: &sqlx::any::AnyRow) -> Result<Item> {
    let price: Option<i64> = row.try_get(3)?;
    Ok(Item {
        id: row.try_get(0)?,
        text: row.try_get(1)?,
        category: row.try_get(2)?,
        price_level: price.map(|p| p.clamp(0, i64::from(MAX_PRICE_LEVEL)) as u8),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_cut_into_a_few_statement_sizes() {
        let sizes = |n| chunk_sizes(n).collect::<Vec<_>>();
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(400), [256, 128, 16]);
        assert_eq!(sizes(600), [256, 256, 64, 16, 8]);
        for n in 0..2000 {
            assert_eq!(sizes(n).iter().sum::<usize>(), n);
        }
    }

    #[test]
    fn placeholders_follow_the_engine() {
        assert_eq!(value_rows(Backend::Sqlite, 2, 3), "(?,?,?),(?,?,?)");
        assert_eq!(value_rows(Backend::Postgres, 2, 3), "($1,$2,$3),($4,$5,$6)");
        assert_eq!(params(Backend::Postgres, 0, 3), "$1,$2,$3");
        assert_eq!(params(Backend::Sqlite, 0, 2), "?,?");
    }
}
