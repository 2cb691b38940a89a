//! Collect: the runs `scripts/distill` left for one dataset, read as they are.

use std::path::Path;

use anyhow::Context;
use serde_json::Value;
use sessionrank_core::ModelBundle;
use sessionrank_core::bundle::WEIGHTS;

/// One finished run: its results file and its weights' sizes.
#[derive(Debug, Clone)]
pub struct Run {
    /// The run's directory name (`teacher`, `student-d32`, …).
    pub name: String,
    /// Its `result.json`, as `sessionrank train --results` wrote it.
    pub result: Value,
    /// Weight bytes of the full bundle.
    pub full_bytes: u64,
    /// Weight bytes of its browser bundle (what a shopper downloads).
    pub browser_bytes: u64,
}

impl Run {
    /// A test metric of the run (`mrr@20`, `ndcg@10`, …).
    pub fn metric(&self, key: &str) -> Option<f64> {
        self.result["metrics"][key].as_f64()
    }

    pub fn d_model(&self) -> u64 {
        self.result["config"]["model"]["d_model"].as_u64().unwrap_or(0)
    }
}

/// Everything one dataset's directory holds. Only a dataset with both a teacher and a student
/// is reported.
#[derive(Debug)]
pub struct DatasetRuns {
    pub teacher: Run,
    pub student: Run,
    pub no_kd: Option<Run>,
    pub no_content: Option<Run>,
    /// Every KD student (`student` and `student-d<N>`), smallest first.
    pub sizes: Vec<Run>,
    /// Every no-KD student (`student_no_kd` and `student_no_kd-d<N>`), smallest first.
    pub sizes_no_kd: Vec<Run>,
    /// `sessionrank list-stage --results` without and with list context.
    pub list_off: Option<Value>,
    pub list_on: Option<Value>,
}

impl DatasetRuns {
    /// The teacher, the student, and the no-KD and no-content students where run: the rows
    /// of the dataset's main table.
    pub fn main_runs(&self) -> impl Iterator<Item = &Run> {
        [Some(&self.teacher), Some(&self.student), self.no_kd.as_ref(), self.no_content.as_ref()]
            .into_iter()
            .flatten()
    }
}

/// The runs of `<runs_dir>/<dataset>`, or `None` without a teacher and a student.
pub fn collect(runs_dir: &Path, dataset: &str) -> anyhow::Result<Option<DatasetRuns>> {
    let dir = runs_dir.join(dataset);
    let (Some(teacher), Some(student)) = (read_run(&dir, "teacher")?, read_run(&dir, "student")?)
    else {
        return Ok(None);
    };
    let no_kd = read_run(&dir, "student_no_kd")?;
    let no_content = read_run(&dir, "student_no_content")?;
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
    Ok(Some(DatasetRuns {
        teacher,
        student,
        no_kd,
        no_content,
        sizes,
        sizes_no_kd,
        // Optional stages: a missing or unreadable file leaves its table out.
        list_off: read_json(&dir.join("list_off.json")).ok(),
        list_on: read_json(&dir.join("list_on.json")).ok(),
    }))
}

pub fn read_json(path: &Path) -> anyhow::Result<Value> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

/// `<dir>/<name>`'s results and weight sizes, or `None` when it has no `result.json` yet.
fn read_run(dir: &Path, name: &str) -> anyhow::Result<Option<Run>> {
    let result_path = dir.join(name).join("result.json");
    if !result_path.exists() {
        return Ok(None);
    }
    let result = read_json(&result_path)?;
    let bundle_dir = dir.join(name).join("bundle");
    let bundle = ModelBundle::read_dir(&bundle_dir)
        .with_context(|| format!("reading bundle {}", bundle_dir.display()))?;
    let browser =
        bundle.browser().with_context(|| format!("{}: browser bundle", bundle_dir.display()))?;
    let weight_bytes = |b: &ModelBundle| b.files.get(WEIGHTS).map(|w| w.len() as u64).unwrap_or(0);
    Ok(Some(Run {
        name: name.to_string(),
        result,
        full_bytes: weight_bytes(&bundle),
        browser_bytes: weight_bytes(&browser),
    }))
}
