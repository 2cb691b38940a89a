//! The `sessionrank` binary on the committed sample (tests/data).

use std::process::Command;

use crate::repo_root;

/// Run `sessionrank <args>` in the repository root; its stdout, or a panic with its stderr.
fn sessionrank(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sessionrank"))
        .args(args)
        .current_dir(repo_root())
        .env("RUST_LOG", "warn")
        .output()
        .expect("the sessionrank binary runs");
    assert!(out.status.success(), "sessionrank {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `import` prints the counts, the dataset's profile and the preset `train` starts from: the
/// slice is a small log of sessions, so it gets the small-sessions preset.
#[test]
fn import_prints_the_profile_and_the_preset_of_a_small_session_log() {
    let out = sessionrank(&["import", "diginetica-slice", "--data-dir", "tests/data"]);
    assert!(out.contains("train sessions  3256"), "{out}");
    assert!(out.contains("profile: sessions: 10112 items, 3256 training sequences"), "{out}");
    assert!(out.contains("preset: sessions (d_model 64, layers 2, heads 2, d_ff 256"), "{out}");
}

/// `train --size-only` sizes the preset's model for the catalog without training.
#[test]
fn size_only_prints_the_presets_model_for_the_catalog() {
    let out = sessionrank(&[
        "train",
        "diginetica-slice",
        "--data-dir",
        "tests/data",
        "--size-only",
        "--layers",
        "1",
    ]);
    assert!(out.contains("d_model 64 layers 1 heads 2 d_ff 256 max_len 30 items 10112"), "{out}");
}
