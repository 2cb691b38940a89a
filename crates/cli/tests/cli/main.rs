//! Integration tests of the `sessionrank` command, in one test binary (one link step on 2
//! cores). Building them also builds the `sessionrank` binary, which the server's tests spawn.
//!
//! * `commands` — the binary itself on the committed sample: import, profile and preset, eval
//!   with a rules file;
//! * `distill_report` — the distillation report from a directory of runs.

mod commands;
mod distill_report;

use std::path::{Path, PathBuf};

use sessionrank_data::Dataset;
use sessionrank_data::import::import_named;

/// The repository root, found at run time (a compile-time path goes stale when checkouts
/// share a build cache).
pub fn repo_root() -> PathBuf {
    let cwd = std::env::current_dir().expect("current dir");
    cwd.ancestors()
        .find(|d| d.join("Trunk.toml").is_file())
        .map(Path::to_path_buf)
        .expect("run inside the repository")
}

/// The bundled Diginetica slice (tests/data), imported as the CLI imports it.
pub fn slice() -> Dataset {
    import_named("diginetica-slice", &repo_root().join("tests/data"))
        .expect("import the bundled slice")
        .dataset
}
