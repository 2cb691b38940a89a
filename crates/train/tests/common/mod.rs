//! What the train crate's integration tests share: the repository root, the bundled Diginetica
//! slice, and a turn at burn-flex's random number generator.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

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

/// burn-flex draws every random number from one process-wide RNG, and the tests of a file run
/// on parallel threads. A test that seeds it and then draws holds this turn for its whole body;
/// otherwise another test's draws interleave with its own and its numbers change from run to
/// run (a CI run saw the list-stage test's NDCG gain drop below its bar that way).
static RNG_TURN: Mutex<()> = Mutex::new(());

pub fn rng_turn() -> MutexGuard<'static, ()> {
    RNG_TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
