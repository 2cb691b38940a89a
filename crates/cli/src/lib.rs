//! `sessionrank`, the command line: import real session logs, train, evaluate, export,
//! run the experiments' extra stages, and serve.
//!
//! ```text
//! sessionrank import diginetica                      # counts, profile, preset
//! sessionrank train diginetica --out bundles/dg \
//!     --results results/quality-diginetica.json      # train, evaluate, write a bundle
//! sessionrank train amazon-beauty --size-only        # the preset's size, without training
//! sessionrank eval diginetica --bundle bundles/dg    # a bundle on the test split
//! sessionrank export bundles/dg --out cdn/ --browser # what a browser downloads
//! sessionrank list-stage diginetica --bundle bundles/dg --out bundles/dg-list
//! sessionrank distill-report --runs ~/.cache/sessionrank/distill-runs
//! sessionrank serve --listen 127.0.0.1:8080 --data-dir /var/lib/sessionrank
//! sessionrank publish bundles/dg --server http://127.0.0.1:8080 --activate
//! ```
//!
//! `sessionrank <command> --help` lists every flag with its default. The model's shape
//! defaults to the dataset's preset, chosen by the dataset's kind and size
//! (`sessionrank_train::presets`); every other default is the library's own setting.
//!
//! How it is built (ripgrep's low/high arguments): [`args`] is the command line as typed
//! (clap), [`plan::resolve`] turns it in one step into a [`plan::Plan`] — datasets imported,
//! presets chosen and overridden, defaults settled — and one module per subcommand carries
//! the plan out. `main.rs` only sets up logging, parses and calls [`run`].

pub mod args;
pub mod distill_report;
pub mod eval;
pub mod export;
pub mod import;
pub mod list_stage;
mod output;
pub mod plan;
pub mod publish;
pub mod serve;
pub mod train;

use plan::Plan;

/// Resolve the parsed command line into a plan and carry it out.
pub fn run(cli: args::Cli) -> anyhow::Result<()> {
    match plan::resolve(cli)? {
        Plan::Import(p) => import::run(p),
        Plan::Train(p) => {
            sessionrank_train::memory::keep_freed_memory();
            train::run(*p)
        }
        Plan::Eval(p) => eval::run(p),
        Plan::Export(p) => export::run(p),
        Plan::ListStage(p) => {
            sessionrank_train::memory::keep_freed_memory();
            list_stage::run(p)
        }
        Plan::DistillReport(p) => distill_report::run(p),
        Plan::Serve(p) => serve::run(&p),
        Plan::Publish(p) => publish::run(p),
    }
}
