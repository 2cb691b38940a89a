//! `sessionrank serve`: the HTTP service (all of it lives in `sessionrank-server`).

/// Resolve the service's configuration (file, environment, flags) and serve until a signal.
pub fn run(args: &sessionrank_server::ServeArgs) -> anyhow::Result<()> {
    sessionrank_server::serve::run_cli(args)
}
