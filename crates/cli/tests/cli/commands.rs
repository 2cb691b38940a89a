//! The `sessionrank` binary on the committed sample (tests/data).

use std::process::Command;

use crate::repo_root;

/// Run `sessionrank <args>` in the repository root.
fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sessionrank"))
        .args(args)
        .current_dir(repo_root())
        .env("RUST_LOG", "warn")
        .output()
        .expect("the sessionrank binary runs")
}

/// `sessionrank <args>`'s stdout, or a panic with its stderr.
fn sessionrank(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "sessionrank {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `sessionrank <args>` expecting a refusal; its stderr.
fn sessionrank_refused(args: &[&str]) -> String {
    let out = run(args);
    assert!(!out.status.success(), "sessionrank {args:?} was accepted");
    String::from_utf8_lossy(&out.stderr).into_owned()
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
    let stderr = sessionrank_refused(&[&common[..], &[bad.to_str().expect("utf-8 path")]].concat());
    assert!(stderr.contains("rules.blend"), "{stderr}");
}

/// `eval --knn-blend W,...` mixes the model with session-kNN: every weight (and 0, the model
/// alone) is scored on validation, the best is recorded and the test set scored at it; a
/// weight outside 0..=1 is refused naming the flag.
#[test]
fn eval_with_a_knn_blend_chooses_its_weight_on_validation() {
    let dir = tempfile::tempdir().expect("temp dir");
    let results = dir.path().join("hybrid.json");
    let common = [
        "eval",
        "diginetica-slice",
        "--data-dir",
        "tests/data",
        "--bundle",
        "tests/fixtures/bundle-slice",
        "--no-baselines",
        "--rerank-cases",
        "0",
        "--knn-blend",
    ];
    sessionrank(
        &[&common[..], &["0.5,0.9", "--results", results.to_str().expect("utf-8")]].concat(),
    );
    let out: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&results).expect("results written"))
            .expect("results are JSON");
    let blend = &out["knn_blend"];
    assert_eq!(blend["weights"], serde_json::json!([0.0, 0.5, 0.9]), "{blend}");
    let sweep = blend["validation"].as_array().expect("the validation sweep");
    let mrr = |v: &serde_json::Value| v["metrics"]["mrr_at_20"].as_f64().unwrap_or(f64::NAN);
    let best = sweep.iter().map(mrr).fold(f64::NEG_INFINITY, f64::max);
    let chosen = sweep
        .iter()
        .find(|v| v["weight"] == blend["chosen_weight"])
        .unwrap_or_else(|| panic!("the chosen weight is one of the sweep: {blend}"));
    assert_eq!(mrr(chosen), best, "the best validation MRR@20 is chosen: {blend}");
    assert!(blend["validation_cases"].as_u64().unwrap_or(0) > 0, "{blend}");
    let test = out["metrics"]["mrr@20"].as_f64().unwrap_or(f64::NAN);
    assert!(test.is_finite() && test > 0.0, "the test set is scored: {out}");

    let stderr = sessionrank_refused(&[&common[..], &["1.5"]].concat());
    assert!(stderr.contains("--knn-blend") && stderr.contains("1.5"), "{stderr}");
}
