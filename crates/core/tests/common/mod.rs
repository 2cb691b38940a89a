//! Shared by the engine's integration tests.

use std::path::{Path, PathBuf};

/// The repository root, found at run time from the working directory (`cargo test` runs in the
/// package's directory): a compile-time path would go stale when checkouts share a build cache.
pub fn repo_root() -> PathBuf {
    let cwd = std::env::current_dir().expect("working directory");
    cwd.ancestors()
        .find(|d| d.join("Trunk.toml").is_file())
        .map(Path::to_path_buf)
        .expect("run inside the repository")
}
