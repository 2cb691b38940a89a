//! `sessionrank`: logging, the command line, and a call into [`sessionrank_cli::run`]
//! (its documentation shows the commands).

use clap::Parser;
use sessionrank_cli::args::Cli;

/// `json`: one JSON object per log line, for a log pipeline; `text` (the default): lines for
/// a terminal. An environment variable, not a flag: logging starts before the command line
/// is parsed, and every subcommand logs.
const LOG_FORMAT_ENV: &str = "SESSIONRANK_LOG_FORMAT";

fn main() -> anyhow::Result<()> {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match std::env::var(LOG_FORMAT_ENV).as_deref().map(str::trim) {
        Ok("json") => logs.json().flatten_event(true).with_current_span(false).init(),
        Ok("text" | "") | Err(_) => logs.init(),
        Ok(other) => anyhow::bail!("{LOG_FORMAT_ENV}={other}: expected `json` or `text`"),
    }
    sessionrank_cli::run(Cli::parse())
}
