//! `results/distill.json` and `docs/distill.md`: the distillation experiment's report,
//! assembled from the runs `scripts/distill` leaves in one directory.
//!
//! Layout read (every file as written by `sessionrank train --results/--out` and
//! `sessionrank list-stage --results`):
//!
//! ```text
//! <runs>/<dataset>/<run>/result.json, <runs>/<dataset>/<run>/bundle/
//!     run = teacher | student | student_no_kd | student_no_content | student-d<N> | student_no_kd-d<N>
//! <runs>/<dataset>/list_off.json, <runs>/<dataset>/list_on.json
//! ```
//!
//! Sizes are counted as shipped: the student's bytes are its browser bundle's weights (what a
//! shopper downloads; item vectors come with the candidate page), the teacher's are its full
//! weights (it is never shipped). Both are also given like for like, so nobody has to take
//! the headline ratio on trust.
//!
//! A dataset with no teacher and student under `<runs>` keeps its section of the previous
//! report (JSON and Markdown) as it was, listed under `carried_over`: the runs of one dataset
//! can be redone on a machine that no longer holds the other's (each run keeps its own command
//! and device in `runs.<name>`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use sessionrank_core::ModelBundle;

use crate::report::line_chart;
use crate::{Result, TrainError};

/// The issue's bar for the Diginetica teacher (SR-GNN's 50.73 / 17.59, + 3% relative).
const BAR_P20: f64 = 52.25;
const BAR_MRR20: f64 = 18.12;

/// The metric each dataset's student is judged on, and the ones its table reports.
fn judged_metric(dataset: &str) -> (&'static str, &'static [&'static str]) {
    match dataset {
        "diginetica" => ("mrr@20", &["p@20", "mrr@20", "ndcg@10"]),
        _ => ("ndcg@10", &["ndcg@10", "hr@10"]),
    }
}

/// One finished run: its results file and its weights' sizes.
#[derive(Debug, Clone)]
struct Run {
    name: String,
    result: Value,
    full_bytes: u64,
    browser_bytes: u64,
}

impl Run {
    fn metric(&self, key: &str) -> Option<f64> {
        self.result["metrics"][key].as_f64()
    }

    fn d_model(&self) -> u64 {
        self.result["config"]["model"]["d_model"].as_u64().unwrap_or(0)
    }

    fn summary(&self, keys: &[&str]) -> Value {
        let mut m = Map::new();
        for k in keys {
            if let Some(v) = self.metric(k) {
                m.insert((*k).to_string(), json!(v));
            }
        }
        Value::Object(m)
    }

    fn details(&self) -> Value {
        let c = &self.result["config"];
        json!({
            "d_model": c["model"]["d_model"], "layers": c["model"]["n_layers"], "heads": c["model"]["n_heads"],
            "d_ff": c["model"]["d_ff"], "max_len": c["model"]["max_len"], "use_content": c["model"]["use_content"],
            "negatives": c["negatives"], "epochs": c["max_epochs"], "schedule_epochs": c["schedule_epochs"], "best_epoch": self.result["best_epoch"],
            "distill": c["distill"], "metrics": self.result["metrics"],
            "full_weight_bytes": self.full_bytes, "browser_weight_bytes": self.browser_bytes,
            "train_seconds": self.result["train_seconds"], "targets_per_second": self.result["targets_per_second"],
            "device": self.result["device"], "command": self.result["command"],
        })
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path).map_err(TrainError::io(path))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| TrainError::Other(format!("{}: {e}", path.display())))
}

fn read_run(dir: &Path, name: &str) -> Result<Option<Run>> {
    let result_path = dir.join(name).join("result.json");
    if !result_path.exists() {
        return Ok(None);
    }
    let result = read_json(&result_path)?;
    let bundle_dir = dir.join(name).join("bundle");
    let bundle = ModelBundle::read_dir(&bundle_dir)
        .map_err(|e| TrainError::Other(format!("{}: {e}", bundle_dir.display())))?;
    let full_bytes =
        bundle.files.get(sessionrank_core::bundle::WEIGHTS).map(|w| w.len() as u64).unwrap_or(0);
    let browser = bundle
        .browser()
        .map_err(|e| TrainError::Other(format!("{}: browser bundle: {e}", bundle_dir.display())))?;
    let browser_bytes =
        browser.files.get(sessionrank_core::bundle::WEIGHTS).map(|w| w.len() as u64).unwrap_or(0);
    Ok(Some(Run { name: name.to_string(), result, full_bytes, browser_bytes }))
}

/// The report of one dataset: JSON for `datasets.<name>` plus its Markdown section.
struct DatasetReport {
    json: Value,
    markdown: String,
    student_bytes: u64,
    teacher_bytes: u64,
}

fn pct(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { 100.0 * a / b }
}

fn dataset_report(runs_dir: &Path, dataset: &str, doc_dir: &Path) -> Result<Option<DatasetReport>> {
    let dir = runs_dir.join(dataset);
    let (Some(teacher), Some(student)) = (read_run(&dir, "teacher")?, read_run(&dir, "student")?)
    else {
        return Ok(None);
    };
    let no_kd = read_run(&dir, "student_no_kd")?;
    let no_content = read_run(&dir, "student_no_content")?;
    let (judged, keys) = judged_metric(dataset);
    let mut json = Map::new();
    json.insert("teacher".into(), teacher.summary(keys));
    json.insert("student".into(), student.summary(keys));
    if let Some(r) = &no_kd {
        json.insert("student_no_kd".into(), r.summary(keys));
    }
    let t = teacher.metric(judged).unwrap_or(0.0);
    let s = student.metric(judged).unwrap_or(0.0);
    let mut checks = Map::new();
    checks.insert(format!("student_over_teacher_{judged}"), json!(s / t.max(1e-12)));
    if let Some(n) = no_kd.as_ref().and_then(|r| r.metric(judged)) {
        checks.insert(format!("student_over_no_kd_{judged}"), json!(s / n.max(1e-12)));
    }
    checks.insert(
        "teacher_full_over_student_browser_bytes".into(),
        json!(teacher.full_bytes as f64 / student.browser_bytes.max(1) as f64),
    );
    checks.insert(
        "teacher_full_over_student_full_bytes".into(),
        json!(teacher.full_bytes as f64 / student.full_bytes.max(1) as f64),
    );
    checks.insert(
        "teacher_browser_over_student_browser_bytes".into(),
        json!(teacher.browser_bytes as f64 / student.browser_bytes.max(1) as f64),
    );
    // The issue's bar on Diginetica: SR-GNN + 3% relative (50.73 / 17.59 → 52.25 / 18.12).
    let teacher_bar = (dataset == "diginetica").then(|| {
        let (p, m) =
            (teacher.metric("p@20").unwrap_or(0.0), teacher.metric("mrr@20").unwrap_or(0.0));
        (p, m, p >= BAR_P20 && m >= BAR_MRR20)
    });
    if let Some((p, m, met)) = teacher_bar {
        checks.insert("teacher_bar".into(), json!({"p@20": p, "mrr@20": m, "bar_p@20": BAR_P20, "bar_mrr@20": BAR_MRR20, "met": met, "gce_gnn": {"p@20": 54.22, "mrr@20": 19.04}}));
    }
    json.insert("checks".into(), Value::Object(checks));

    // Sizes: every KD student (student + student-d<N>), smallest first; no-KD where run.
    let mut sizes: Vec<Run> = vec![student.clone()];
    let mut sizes_no_kd: Vec<Run> = no_kd.iter().cloned().collect();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            if name.starts_with("student-d") {
                sizes.extend(read_run(&dir, &name)?);
            } else if name.starts_with("student_no_kd-d") {
                sizes_no_kd.extend(read_run(&dir, &name)?);
            }
        }
    }
    sizes.sort_by_key(Run::d_model);
    sizes_no_kd.sort_by_key(Run::d_model);
    // The no-KD twin of a KD student: same width.
    let no_kd_of = |r: &Run| sizes_no_kd.iter().find(|n| n.d_model() == r.d_model());
    let size_rows: Vec<Value> = sizes
        .iter()
        .map(|r| {
            let no = no_kd_of(r);
            json!({"run": r.name, "d_model": r.d_model(), "browser_weight_bytes": r.browser_bytes, "full_weight_bytes": r.full_bytes,
                   "kd": r.summary(keys), "no_kd": no.map(|n| n.summary(keys))})
        })
        .collect();
    let list_off = read_json(&dir.join("list_off.json")).ok();
    let list_on = read_json(&dir.join("list_on.json")).ok();
    let mut ablations = Map::new();
    ablations.insert("student_sizes".into(), Value::Array(size_rows));
    if let Some(r) = &no_content {
        ablations.insert(
            "content_tower_off".into(),
            json!({"content_on": student.summary(keys), "content_off": r.summary(keys)}),
        );
    }
    let list_summary = |v: &Value| {
        json!({"retriever100_before": v["retriever100_before"], "retriever100_after": v["retriever100_after"],
               "browser_weight_bytes": v["browser_weight_bytes"], "lists": v["stage"]["lists"], "seconds": v["stage"]["seconds"]})
    };
    if list_off.is_some() || list_on.is_some() {
        ablations.insert(
            "list_context".into(),
            json!({"off_rank_bias_only": list_off.as_ref().map(list_summary), "on": list_on.as_ref().map(list_summary)}),
        );
    }
    json.insert("ablations".into(), Value::Object(ablations));
    let mut runs = Map::new();
    for r in [Some(&teacher), Some(&student), no_kd.as_ref(), no_content.as_ref()]
        .into_iter()
        .flatten()
        .chain(sizes.iter())
        .chain(sizes_no_kd.iter())
    {
        runs.insert(r.name.clone(), r.details());
    }
    json.insert("runs".into(), Value::Object(runs));

    // Markdown.
    let mut md = String::new();
    let _ = writeln!(md, "## {dataset}\n");
    let _ = write!(
        md,
        "| model | d_model × layers | browser weights (B) | full weights (B) | train s | device |"
    );
    for k in keys {
        let _ = write!(md, " {k} |");
    }
    let _ = write!(md, "\n|---|---|---:|---:|---:|---|");
    for _ in keys.iter() {
        md.push_str("---:|");
    }
    md.push('\n');
    for r in
        [Some(&teacher), Some(&student), no_kd.as_ref(), no_content.as_ref()].into_iter().flatten()
    {
        let c = &r.result["config"]["model"];
        let _ = write!(
            md,
            "| {} | {} × {} (max_len {}) | {} | {} | {:.0} | {} |",
            r.name,
            c["d_model"],
            c["n_layers"],
            c["max_len"],
            r.browser_bytes,
            r.full_bytes,
            r.result["train_seconds"].as_f64().unwrap_or(0.0),
            r.result["device"].as_str().unwrap_or("?")
        );
        for k in keys {
            let _ = write!(
                md,
                " {} |",
                r.metric(k).map(|v| format!("{v}")).unwrap_or_else(|| "–".into())
            );
        }
        md.push('\n');
    }
    let n = no_kd.as_ref().and_then(|r| r.metric(judged));
    let _ = writeln!(
        md,
        "\nStudent / teacher {judged}: **{:.1}%** (goal ≥ 95%). Student / no-KD student: **{}** (goal ≥ +2%). Teacher full weights / student browser weights: **{:.1}×**; like for like (full / full) {:.1}×, (browser / browser) {:.1}×.\n",
        pct(s, t),
        n.map(|n| format!("{:+.1}%", pct(s, n) - 100.0)).unwrap_or_else(|| "not run".into()),
        teacher.full_bytes as f64 / student.browser_bytes.max(1) as f64,
        teacher.full_bytes as f64 / student.full_bytes.max(1) as f64,
        teacher.browser_bytes as f64 / student.browser_bytes.max(1) as f64,
    );
    if let Some((p, m, met)) = teacher_bar {
        let met = if met { "met" } else { "**not met**" };
        let _ = writeln!(
            md,
            "Teacher against the bar (SR-GNN + 3%: P@20 {BAR_P20}, MRR@20 {BAR_MRR20}): {p} / {m}, {met}; GCE-GNN reports 54.22 / 19.04.\n"
        );
    }
    if sizes.len() > 1 {
        let _ = writeln!(
            md,
            "### Student size vs quality\n\n| d_model | browser weights (B) | KD {judged} | no-KD {judged} |\n|---:|---:|---:|---:|"
        );
        for r in &sizes {
            let no = no_kd_of(r).and_then(|x| x.metric(judged));
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                r.d_model(),
                r.browser_bytes,
                r.metric(judged).unwrap_or(0.0),
                no.map(|v| v.to_string()).unwrap_or_else(|| "–".into())
            );
        }
        let labels: Vec<String> =
            sizes.iter().map(|r| format!("{} KB", r.browser_bytes / 1000)).collect();
        let mut series = vec![(
            "KD student".to_string(),
            sizes.iter().map(|r| r.metric(judged).unwrap_or(f64::NAN)).collect::<Vec<f64>>(),
        )];
        let no_series: Vec<f64> = sizes
            .iter()
            .map(|r| no_kd_of(r).and_then(|x| x.metric(judged)).unwrap_or(f64::NAN))
            .collect();
        if no_series.iter().any(|v| v.is_finite()) {
            series.push(("no-KD student".to_string(), no_series));
        }
        series.push(("teacher".to_string(), vec![t; sizes.len()]));
        let svg = line_chart(
            &format!("{dataset}: student browser weights vs {judged}"),
            &labels,
            &series,
            judged,
        );
        let file = format!("distill-{dataset}-sizes.svg");
        std::fs::write(doc_dir.join(&file), svg).map_err(TrainError::io(&doc_dir.join(&file)))?;
        let _ = writeln!(md, "\n![student sizes]({file})\n");
    }
    if let Some(r) = &no_content {
        let _ = writeln!(
            md,
            "### Content tower\n\nWith the content tower (category, price, text) the KD student reaches {judged} {}; without it {}.\n",
            s,
            r.metric(judged).unwrap_or(0.0)
        );
    }
    if list_off.is_some() || list_on.is_some() {
        let _ = writeln!(
            md,
            "### List context (retriever-100 protocol, the storefront's call)\n\n| scorer | NDCG@10 | HR@10 | MRR@20 | browser weights (B) |\n|---|---:|---:|---:|---:|"
        );
        let mut first = true;
        for (label, v) in [
            ("rank bias only (list context off)", &list_off),
            ("rank bias + list self-attention (on)", &list_on),
        ] {
            let Some(v) = v else { continue };
            if first {
                let b = &v["retriever100_before"];
                let _ = writeln!(
                    md,
                    "| plain dot product (no list stage) | {} | {} | {} | {} |",
                    fmt4(&b["ndcg_at_10"]),
                    fmt4(&b["hr_at_10"]),
                    fmt2(&b["mrr_at_20"]),
                    student.browser_bytes
                );
                first = false;
            }
            let a = &v["retriever100_after"];
            let _ = writeln!(
                md,
                "| {label} | {} | {} | {} | {} |",
                fmt4(&a["ndcg_at_10"]),
                fmt4(&a["hr_at_10"]),
                fmt2(&a["mrr_at_20"]),
                v["browser_weight_bytes"]
            );
        }
        md.push('\n');
    }
    Ok(Some(DatasetReport {
        json: Value::Object(json),
        markdown: md,
        student_bytes: student.browser_bytes,
        teacher_bytes: teacher.full_bytes,
    }))
}

fn fmt4(v: &Value) -> String {
    v.as_f64().map(|x| format!("{x:.4}")).unwrap_or_else(|| "–".into())
}

fn fmt2(v: &Value) -> String {
    v.as_f64().map(|x| format!("{x:.2}")).unwrap_or_else(|| "–".into())
}

/// The report already at the output paths, whose datasets are carried over when their runs
/// are absent.
struct Previous {
    json: Option<Value>,
    markdown: String,
}

impl Previous {
    fn read(out: &ReportPaths) -> Self {
        Self {
            json: read_json(&out.json).ok(),
            markdown: std::fs::read_to_string(&out.markdown).unwrap_or_default(),
        }
    }

    /// `dataset`'s JSON and its Markdown section (from its `## <dataset>` heading to the next
    /// `## ` heading), with the byte counts the headline sizes are taken from.
    fn dataset(&self, dataset: &str) -> Option<DatasetReport> {
        let json = self.json.as_ref()?.get("datasets")?.get(dataset)?.clone();
        let heading = format!("## {dataset}\n");
        let start = self.markdown.find(&heading)?;
        let rest = &self.markdown[start + heading.len()..];
        let end = rest.find("\n## ").map_or(self.markdown.len(), |i| start + heading.len() + i + 1);
        let bytes = |run: &str, key: &str| json["runs"][run][key].as_u64();
        Some(DatasetReport {
            student_bytes: bytes("student", "browser_weight_bytes")?,
            teacher_bytes: bytes("teacher", "full_weight_bytes")?,
            markdown: self.markdown[start..end].to_string(),
            json,
        })
    }
}

/// Paths the report writes.
#[derive(Debug, Clone)]
pub struct ReportPaths {
    pub json: PathBuf,
    pub markdown: PathBuf,
}

/// Read the runs under `runs_dir` and write the JSON and Markdown reports. `command` is the
/// command that produced the runs (for the record). Returns the JSON.
pub fn write_distill_report(
    runs_dir: &Path,
    command: &str,
    machine: &str,
    out: &ReportPaths,
) -> Result<Value> {
    let doc_dir = out.markdown.parent().map(Path::to_path_buf).unwrap_or_default();
    std::fs::create_dir_all(&doc_dir).map_err(TrainError::io(&doc_dir))?;
    let mut datasets = Map::new();
    let mut md = String::from(
        "# Distillation: teacher → browser student\n\nGenerated by `sessionrank distill-report` from the runs of `",
    );
    md.push_str(command);
    md.push_str("`; the numbers are in `results/distill.json`.\n\n");
    let (mut student_bytes, mut teacher_bytes) = (0u64, u64::MAX);
    let previous = Previous::read(out);
    let mut carried = Vec::new();
    for dataset in ["diginetica", "amazon-beauty"] {
        let report = if let Some(r) = dataset_report(runs_dir, dataset, &doc_dir)? {
            r
        } else if let Some(r) = previous.dataset(dataset) {
            carried.push(dataset);
            r
        } else {
            continue;
        };
        student_bytes = student_bytes.max(report.student_bytes);
        teacher_bytes = teacher_bytes.min(report.teacher_bytes);
        datasets.insert(dataset.to_string(), report.json);
        md.push_str(&report.markdown);
    }
    // Every dataset carried over (or none at all): the runs directory held nothing to report.
    if datasets.len() == carried.len() {
        return Err(TrainError::Other(format!(
            "{}: no dataset has both a teacher and a student run",
            runs_dir.display()
        )));
    }
    let value = json!({
        "command": command,
        "machine": machine,
        "carried_over": carried,
        "datasets": datasets,
        "student_weight_bytes": student_bytes,
        "teacher_weight_bytes": teacher_bytes,
        "sizes_note": "student = browser bundle weights as shipped (largest over datasets); teacher = full weights (smallest over datasets)",
    });
    if let Some(p) = out.json.parent() {
        std::fs::create_dir_all(p).map_err(TrainError::io(p))?;
    }
    let text = serde_json::to_vec_pretty(&value).map_err(|e| TrainError::Other(e.to_string()))?;
    std::fs::write(&out.json, text).map_err(TrainError::io(&out.json))?;
    std::fs::write(&out.markdown, md).map_err(TrainError::io(&out.markdown))?;
    Ok(value)
}
