//! `sessionrank`: logging, the command line, and a call into [`sessionrank_cli::run`]
//! (its documentation shows the commands).

use clap::Parser;
use sessionrank_cli::args::Cli;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    sessionrank_cli::run(Cli::parse())
}
