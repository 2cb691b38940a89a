//! `sessionrank distill-report`: `results/distill.json` and `docs/distill.md`, the
//! distillation experiment's report, assembled from the runs `scripts/distill` leaves in one
//! directory, in three steps: [`collect()`] reads each dataset's runs, [`summarise()`] computes
//! its numbers and checks, [`render`] writes them as JSON and Markdown.
//!
//! Layout read (every file as written by `sessionrank train --results/--out` and
//! `sessionrank list-stage --results`):
//!
//! ```text
//! <runs>/<dataset>/<run>/result.json, <runs>/<dataset>/<run>/bundle/
//!     run = teacher | student | student_no_kd | student_no_content
//!         | student-d<N> | student_no_kd-d<N>
//! <runs>/<dataset>/list_off.json, <runs>/<dataset>/list_on.json
//! ```
//!
//! Sizes are counted as shipped: the student's bytes are its browser bundle's weights (what a
//! shopper downloads; item vectors come with the candidate page), the teacher's are its full
//! weights (it is never shipped). Both are also given like for like, so nobody has to take
//! the headline ratio on trust.
//!
//! A dataset with no teacher and student under `<runs>` keeps its section of the previous
//! report (JSON and Markdown) as it was ([`previous`]), listed under `carried_over`: the runs
//! of one dataset can be redone on a machine that no longer holds the other's (each run keeps
//! its own command and device in `runs.<name>`).

pub mod collect;
pub mod previous;
pub mod render;
pub mod summarise;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Map, Value};
use sessionrank_train::device::machine_description;

use crate::plan::DistillReportPlan;
use collect::collect;
use previous::Previous;
use render::{Section, markdown_header, report_json, section};
use summarise::summarise;

/// The key of `results/distill.json` that `scripts/distill-ensemble` writes (and this report
/// keeps): students distilled from an ensemble of seeds, each with 3 seeds of its own.
pub const ENSEMBLE_KEY: &str = "ensemble_kd";

/// The datasets of the experiment, in report order.
const DATASETS: [&str; 2] = ["diginetica", "amazon-beauty"];

/// Paths the report writes (and reads back: see [`previous`]).
#[derive(Debug, Clone)]
pub struct ReportPaths {
    pub json: PathBuf,
    pub markdown: PathBuf,
}

pub fn run(plan: DistillReportPlan) -> anyhow::Result<()> {
    let paths = ReportPaths { json: plan.json, markdown: plan.markdown };
    let value = write_distill_report(&plan.runs, &plan.command, &machine_description(), &paths)?;
    println!("{}", serde_json::to_string_pretty(&value["datasets"])?);
    println!("wrote {} and {}", paths.json.display(), paths.markdown.display());
    Ok(())
}

/// Read the runs under `runs_dir` and write the JSON and Markdown reports. `command` is the
/// command that produced the runs (for the record). Returns the JSON. Fails when no dataset
/// has fresh runs: nothing is rewritten from the previous report alone.
pub fn write_distill_report(
    runs_dir: &Path,
    command: &str,
    machine: &str,
    out: &ReportPaths,
) -> anyhow::Result<Value> {
    let doc_dir = out.markdown.parent().map(Path::to_path_buf).unwrap_or_default();
    create_dir(&doc_dir)?;
    let previous = Previous::read(out);
    let mut datasets = Map::new();
    let mut md = markdown_header(command);
    let (mut student_bytes, mut teacher_bytes) = (0u64, u64::MAX);
    let mut carried = Vec::new();
    for dataset in DATASETS {
        let section = if let Some(s) = fresh_section(runs_dir, dataset, &doc_dir)? {
            s
        } else if let Some(s) = previous.section(dataset) {
            carried.push(dataset);
            s
        } else {
            continue;
        };
        student_bytes = student_bytes.max(section.student_bytes);
        teacher_bytes = teacher_bytes.min(section.teacher_bytes);
        datasets.insert(dataset.to_string(), section.json);
        md.push_str(&section.markdown);
    }
    // Every dataset carried over (or none at all): the runs directory held nothing to report.
    if datasets.len() == carried.len() {
        bail!("{}: no dataset has both a teacher and a student run", runs_dir.display());
    }
    let mut value = report_json(command, machine, &carried, datasets, student_bytes, teacher_bytes);
    // The seeded ensemble-teacher experiment (`scripts/distill-ensemble`) is written into the
    // same file by its own script: kept as it was.
    if let Some(kept) = previous.extra(ENSEMBLE_KEY) {
        value[ENSEMBLE_KEY] = kept;
    }
    if let Some(p) = out.json.parent() {
        create_dir(p)?;
    }
    write(&out.json, &serde_json::to_vec_pretty(&value)?)?;
    write(&out.markdown, md.as_bytes())?;
    Ok(value)
}

/// `dataset`'s section from its runs (collect → summarise → render), its plot written into
/// `doc_dir`; `None` without a teacher and a student.
fn fresh_section(
    runs_dir: &Path,
    dataset: &str,
    doc_dir: &Path,
) -> anyhow::Result<Option<Section>> {
    let Some(runs) = collect(runs_dir, dataset)? else { return Ok(None) };
    let (section, plot) = section(&summarise(dataset, &runs))?;
    if let Some(plot) = plot {
        write(&doc_dir.join(&plot.file), plot.svg.as_bytes())?;
    }
    Ok(Some(section))
}

fn create_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}
