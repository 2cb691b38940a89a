//! Running the service: bind, recover from an earlier crash, serve, shut down gracefully on
//! SIGINT/SIGTERM within a deadline.
//!
//! Connections are served by hyper directly (not `axum::serve`) for the limits a public port
//! needs: at most `max_connections` open at once (the next ones wait in the backlog), and a
//! header-read timeout that closes a connection which does not send a whole request head in
//! time, also between requests on a kept-alive one (slow-loris clients and idle sockets).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use crate::config::{Config, ServeArgs};
use crate::job;
use crate::state::AppState;
use crate::store::Backend;

/// Idempotency keys are remembered this long.
pub const IDEMPOTENCY_TTL_S: i64 = 24 * 3600;

/// `sessionrank serve`: resolve the configuration and run until a signal arrives.
pub fn run_cli(args: &ServeArgs) -> anyhow::Result<()> {
    let config = Config::resolve(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let result = runtime.block_on(run(config));
    // A blocking thread still busy (a training step, a model load) must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// Bind `config.listen` and serve until SIGINT/SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    tracing::info!("configuration: {config:?}");
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let state = AppState::open(config).await?;
    serve(listener, state, shutdown_signal()).await
}

/// Serve on a bound listener until `shutdown` completes (tests bind 127.0.0.1:0 and pass a
/// future of their own), after [`recover`]ing from an earlier crash. Then: stop accepting,
/// let in-flight requests finish, cancel a running training, and return once all of that is
/// done or `shutdown_deadline` has passed. A job cut short is recorded as failed (or, if the
/// process is gone first, at the next start); the live model is never touched.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    recover(&state).await?;
    let addr = listener.local_addr()?;
    // Printed on stdout as well so scripts and tests can find a port chosen by the OS.
    println!("listening on http://{addr}");
    tracing::info!("listening on http://{addr}");
    let background = spawn_background(state.clone());
    let connections = Arc::new(Semaphore::new(state.config.max_connections));
    let (closing, closing_rx) = watch::channel(false);
    accept_until(
        &listener,
        crate::app(state.clone()),
        &state,
        connections.clone(),
        closing_rx,
        shutdown,
    )
    .await;
    drop(listener);
    let started = Instant::now();
    let deadline = state.config.shutdown_deadline;
    state.jobs.stop();
    let _ = closing.send(true);
    let max = u32::try_from(state.config.max_connections).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(deadline, async {
        let _all = connections.acquire_many(max).await;
        while state.jobs.running().is_some() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    background.abort();
    match drained {
        Ok(()) => tracing::info!("shut down in {:.1} s", started.elapsed().as_secs_f64()),
        Err(_) => tracing::warn!(
            "shutdown deadline of {} s passed: exiting with {} connection(s) open{}",
            deadline.as_secs(),
            state.config.max_connections - connections.available_permits(),
            if state.jobs.running().is_some() { " and the job still stopping" } else { "" }
        ),
    }
    Ok(())
}

/// Accept connections until `shutdown` completes, each served on a task of its own.
async fn accept_until(
    listener: &TcpListener,
    app: Router,
    state: &AppState,
    connections: Arc<Semaphore>,
    closing: watch::Receiver<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let header_timeout = state.config.header_read_timeout;
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => return,
            p = connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let stream = tokio::select! {
            () = &mut shutdown => return,
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(
            app.clone().map_request(|req: hyper::Request<Incoming>| req.map(axum::body::Body::new)),
        );
        let mut closing = closing.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!("connection closed: {e}");
                    }
                }
                () = async {
                    let _ = closing.wait_for(|c| *c).await;
                } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}

/// Crash recovery: fail the retraining jobs that died with an earlier server and remove the
/// partial version directories an interrupted publish left (the live model is never among
/// them: it is recorded, hence complete).
pub async fn recover(state: &AppState) -> anyhow::Result<()> {
    // One SQLite file has one server: whatever it was running died with it. With PostgreSQL
    // other instances may be training, and a job whose instance died is taken over once its
    // lease expires (`retrain::take_over_expired`, in the background task).
    if state.store.backend() == Backend::Sqlite {
        let interrupted = state.store.fail_running_jobs(None, job::interrupted).await?;
        if interrupted > 0 {
            tracing::warn!(
                "{interrupted} retraining job(s) were interrupted by a restart and are marked \
                 failed"
            );
        }
    }
    state.models.remove_partial_versions().await
}

/// Retention: delete the events older than `event_retention_days` (by event time). The
/// background task runs this at start and hourly; 0 without a retention.
pub async fn prune_expired_events(state: &AppState) -> anyhow::Result<u64> {
    let Some(days) = state.config.event_retention_days else { return Ok(0) };
    let days = i64::try_from(days).unwrap_or(i64::MAX / 86_400).min(i64::MAX / 86_400);
    let deleted = state.store.delete_events_before(crate::store::now_s() - days * 86_400).await?;
    if deleted > 0 {
        state.pages.events_changed();
    }
    Ok(deleted)
}

/// How often every instance reads the live-model pointer and looks for a job whose lease
/// expired: a publish on one instance is live on all within about this (plus the load).
pub const POLL: Duration = Duration::from_secs(1);

/// Periodic chores: follow the live-model pointer and take over expired jobs (every
/// [`POLL`]: another instance sharing the database may have published, activated, or died
/// while training); delete expired events and forget old idempotency keys (hourly).
fn spawn_background(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let hourly = (3600 / POLL.as_secs().max(1)).max(1);
        let mut n: u64 = 0;
        loop {
            tick.tick().await;
            if let Err(e) = state.models.refresh().await {
                tracing::warn!("refreshing the live model: {e:#}");
            }
            // Keeps each count's scan short even while no page is asked for (every 10 s).
            if n.is_multiple_of(10)
                && let Err(e) = state.store.count_new_events().await
            {
                tracing::warn!("counting new events: {e}");
            }
            if let Err(e) = crate::retrain::take_over_expired(&state).await {
                tracing::warn!("looking for expired retraining jobs: {e:#}");
            }
            if n.is_multiple_of(hourly) {
                match prune_expired_events(&state).await {
                    Ok(0) => {}
                    Ok(k) => tracing::info!("retention: deleted {k} events"),
                    Err(e) => tracing::warn!("deleting expired events: {e}"),
                }
                match state.store.purge_idempotency_keys(IDEMPOTENCY_TTL_S).await {
                    Ok(0) => {}
                    Ok(k) => tracing::info!("forgot {k} idempotency keys older than 24 h"),
                    Err(e) => tracing::warn!("purging idempotency keys: {e}"),
                }
            }
            n += 1;
        }
    })
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("listening for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!("listening for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT: shutting down"),
        _ = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}
