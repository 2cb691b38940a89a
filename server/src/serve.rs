//! Running the service: bind, recover from an earlier crash, serve, shut down gracefully on
//! SIGINT/SIGTERM.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::{Config, ServeArgs};
use crate::job::{self, STALE_AFTER_S};
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
    runtime.block_on(run(config))
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
/// future of their own), after [`recover`]ing from an earlier crash. In-flight requests
/// finish; a running retraining job is abandoned and marked failed at the next start, the
/// live model untouched.
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
    let result = axum::serve(listener, crate::app(state)).with_graceful_shutdown(shutdown).await;
    background.abort();
    result.context("serving")?;
    tracing::info!("shut down");
    Ok(())
}

/// Crash recovery: fail the retraining jobs that died with an earlier server and remove the
/// partial version directories an interrupted publish left (the live model is never among
/// them: it is recorded, hence complete).
pub async fn recover(state: &AppState) -> anyhow::Result<()> {
    // One SQLite file has one server: whatever it was running died with it. With PostgreSQL
    // other instances may be training; only jobs without a heartbeat are failed.
    let older_than_s = match state.store.backend() {
        Backend::Sqlite => None,
        Backend::Postgres => Some(STALE_AFTER_S),
    };
    let interrupted = state.store.fail_running_jobs(older_than_s, job::interrupted).await?;
    if interrupted > 0 {
        tracing::warn!(
            "{interrupted} retraining job(s) were interrupted by a restart and are marked failed"
        );
    }
    state.models.remove_partial_versions().await
}

/// Periodic chores: forget old idempotency keys; follow the live-model pointer (another
/// instance sharing the database may have published or activated a version).
fn spawn_background(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        let mut n: u64 = 0;
        loop {
            tick.tick().await;
            if let Err(e) = state.models.refresh().await {
                tracing::warn!("refreshing the live model: {e:#}");
            }
            if n.is_multiple_of(360) {
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
