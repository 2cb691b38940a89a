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

/// `eval --rules FILE` orders the same retriever-100 lists with and without the shop's rules;
/// a rules file with a bad rule is refused naming it.
#[test]
fn eval_with_rules_reports_the_lists_with_and_without_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules.json");
    std::fs::write(&rules, r#"{"diversity": 0.5, "maxDisplacement": 3}"#).expect("write rules");
    let rules = rules.to_str().expect("utf-8 path");
    let common = [
        "eval",
        "diginetica-slice",
        "--data-dir",
        "tests/data",
        "--bundle",
        "tests/fixtures/bundle-slice",
        "--no-baselines",
        "--rerank-cases",
        "200",
        "--rules",
    ];
    let out = sessionrank(&[&common[..], &[rules]].concat());
    let start = out.rfind("\n{\n").map(|i| i + 1).expect("the rules report, last");
    let report: serde_json::Value =
        serde_json::from_str(&out[start..]).expect("the rules report is JSON");
    assert_eq!(report["cases"], 200, "{out}");
    assert_eq!(report["rules"]["maxDisplacement"], 3, "{out}");
    for side in ["without_rules", "with_rules"] {
        for metric in ["ndcg@10", "hr@10", "category_coverage@10", "ild@10"] {
            let v = report[side][metric].as_f64().expect("a metric");
            assert!((0.0..=1.0).contains(&v), "{side} {metric} {v}");
        }
    }
    // Diversity and a move limit change the top 10 of some lists.
    assert_ne!(report["without_rules"], report["with_rules"], "{out}");

    std::fs::write(dir.path().join("bad.json"), r#"{"blend": 2}"#).expect("write rules");
    let bad = dir.path().join("bad.json");
    let out = Command::new(env!("CARGO_BIN_EXE_sessionrank"))
        .args(common)
        .arg(&bad)
        .current_dir(repo_root())
        .env("RUST_LOG", "warn")
        .output()
        .expect("the sessionrank binary runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rules.blend"), "{stderr}");
}
