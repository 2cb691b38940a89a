//! The distillation report reads the runs of `scripts/distill` and states the checks
//! (sizes as shipped, student vs teacher, KD vs no KD) from them, not from hand-copied numbers.

use std::path::Path;

use burn::tensor::Device;
use sessionrank_cli::distill_report::{ReportPaths, write_distill_report};
use sessionrank_model::ModelConfig;
use sessionrank_train::pipeline::{FeatureOptions, build_encoder, bundle_for, complete_config};

use crate::slice;

/// A run directory as `sessionrank train --out --results` leaves it, with the given metrics.
fn fake_run(runs: &Path, name: &str, d_model: usize, mrr: f64) {
    fake_run_in(runs, "diginetica", name, d_model, mrr);
}

fn fake_run_in(runs: &Path, dataset: &str, name: &str, d_model: usize, mrr: f64) {
    let ds = slice();
    let encoder = build_encoder(&ds, &FeatureOptions::default(), 10, 128).expect("encoder");
    let config = complete_config(
        ModelConfig::new()
            .with_d_model(d_model)
            .with_d_ff(2 * d_model)
            .with_n_heads(2)
            .with_n_layers(1)
            .with_max_len(10),
        &encoder,
    );
    let device = Device::flex();
    let model = config.init(&device);
    let dir = runs.join(dataset).join(name);
    bundle_for(&ds, &config, &model, &encoder, serde_json::json!({}), false)
        .expect("bundle")
        .write_dir(&dir.join("bundle"))
        .expect("write");
    let result = serde_json::json!({
        "command": format!("sessionrank train diginetica --d-model {d_model}"), "device": "flex (CPU)", "train_seconds": 10.0,
        "best_epoch": 1, "targets_per_second": 100.0,
        "metrics": {"p@20": 50.0, "mrr@20": mrr, "ndcg@10": mrr / 100.0, "hr@10": 0.3},
        "config": {"model": {"d_model": d_model, "n_layers": 1, "n_heads": 2, "d_ff": 2 * d_model, "max_len": 10, "use_content": true}, "negatives": 0, "max_epochs": 1},
    });
    std::fs::write(dir.join("result.json"), serde_json::to_vec(&result).expect("json"))
        .expect("write result");
}

#[test]
fn the_report_derives_every_check_from_the_runs() {
    let tmp = tempfile::tempdir().expect("tmp");
    let runs = tmp.path().join("runs");
    fake_run(&runs, "teacher", 48, 18.0);
    fake_run(&runs, "student", 16, 17.5);
    fake_run(&runs, "student_no_kd", 16, 17.0);
    fake_run(&runs, "student-d8", 8, 16.0);
    let paths = ReportPaths {
        json: tmp.path().join("results/distill.json"),
        markdown: tmp.path().join("docs/distill.md"),
    };
    let v = write_distill_report(&runs, "scripts/distill", "test machine", &paths).expect("report");

    let dg = &v["datasets"]["diginetica"];
    assert_eq!(dg["teacher"]["mrr@20"], 18.0);
    assert_eq!(dg["student"]["mrr@20"], 17.5);
    assert_eq!(dg["student_no_kd"]["mrr@20"], 17.0);
    let checks = &dg["checks"];
    assert!(
        (checks["student_over_teacher_mrr@20"].as_f64().expect("a number") - 17.5 / 18.0).abs()
            < 1e-9
    );
    assert!(
        (checks["student_over_no_kd_mrr@20"].as_f64().expect("a number") - 17.5 / 17.0).abs()
            < 1e-9
    );
    // Sizes: the student counts its browser weights, the teacher its full weights.
    let student = v["student_weight_bytes"].as_u64().expect("an integer");
    let teacher = v["teacher_weight_bytes"].as_u64().expect("an integer");
    let runs_json = &dg["runs"];
    assert_eq!(student, runs_json["student"]["browser_weight_bytes"].as_u64().expect("an integer"));
    assert_eq!(teacher, runs_json["teacher"]["full_weight_bytes"].as_u64().expect("an integer"));
    assert!(
        runs_json["student"]["browser_weight_bytes"].as_u64()
            < runs_json["student"]["full_weight_bytes"].as_u64()
    );
    // Two student sizes, smallest first, and their plot.
    let sizes = dg["ablations"]["student_sizes"].as_array().expect("sizes");
    assert_eq!(
        sizes.iter().map(|s| s["d_model"].as_u64().expect("an integer")).collect::<Vec<_>>(),
        vec![8, 16]
    );
    assert!(tmp.path().join("docs/distill-diginetica-sizes.svg").is_file());
    let md = std::fs::read_to_string(&paths.markdown).expect("markdown");
    assert!(md.contains("Student / teacher mrr@20: **97.2%**"), "{md}");
    assert!(md.contains("+2.9%"), "{md}");
    assert_eq!(checks["teacher_bar"]["met"], false, "18.0 MRR@20 is under the 18.12 bar");
    assert!(md.contains("**not met**"), "{md}");
    assert!(
        v.get("datasets").and_then(|d| d.get("amazon-beauty")).is_none(),
        "no Beauty runs, no Beauty section"
    );
}

#[test]
fn a_dataset_without_runs_keeps_its_previous_section() {
    let tmp = tempfile::tempdir().expect("tmp");
    let paths = ReportPaths {
        json: tmp.path().join("results/distill.json"),
        markdown: tmp.path().join("docs/distill.md"),
    };
    // First report: Diginetica's runs only.
    let first_runs = tmp.path().join("first");
    fake_run(&first_runs, "teacher", 48, 18.0);
    fake_run(&first_runs, "student", 16, 17.5);
    let first = write_distill_report(&first_runs, "scripts/distill", "machine A", &paths)
        .expect("first report");
    let first_md = std::fs::read_to_string(&paths.markdown).expect("markdown");
    // As the second report reads it back (a float printed and re-parsed may move in its last digit).
    let first_on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&paths.json).expect("json")).expect("parse");

    // The ensemble experiment's own script adds its key to the same file in between.
    let mut with_ensemble = first_on_disk.clone();
    with_ensemble["ensemble_kd"] = serde_json::json!({"amazon-beauty": {"seeds": [1, 2, 3]}});
    std::fs::write(&paths.json, serde_json::to_vec(&with_ensemble).expect("json")).expect("write");

    // Later, on a machine that holds only Beauty's runs.
    let second_runs = tmp.path().join("second");
    fake_run_in(&second_runs, "amazon-beauty", "teacher", 32, 5.0);
    fake_run_in(&second_runs, "amazon-beauty", "student", 8, 5.5);
    let second = write_distill_report(&second_runs, "scripts/distill", "machine B", &paths)
        .expect("second report");
    assert_eq!(second["carried_over"], serde_json::json!(["diginetica"]));
    assert_eq!(
        second["datasets"]["diginetica"], first_on_disk["datasets"]["diginetica"],
        "carried over unchanged"
    );
    assert_eq!(second["datasets"]["amazon-beauty"]["student"]["ndcg@10"], 0.055);
    assert_eq!(second["ensemble_kd"], with_ensemble["ensemble_kd"], "its key is kept");
    let md = std::fs::read_to_string(&paths.markdown).expect("markdown");
    let section = &first_md[first_md.find("## diginetica").expect("section")..];
    assert!(md.contains(section.trim_end()), "the Diginetica section is kept word for word:\n{md}");
    assert!(
        md.contains("## amazon-beauty") && md.find("## diginetica") < md.find("## amazon-beauty")
    );
    // Headline sizes span both datasets.
    let dg_student = first["student_weight_bytes"].as_u64().expect("an integer");
    assert!(second["student_weight_bytes"].as_u64().expect("an integer") >= dg_student);

    // With no runs at all nothing is rewritten from thin air.
    assert!(
        write_distill_report(&tmp.path().join("empty"), "scripts/distill", "machine C", &paths)
            .is_err()
    );
}
