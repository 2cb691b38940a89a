//! Summarise: the numbers and checks of one dataset's runs — what the issue asked to measure,
//! computed once, so the JSON and the Markdown cannot disagree.

use super::collect::{DatasetRuns, Run};

/// The bar for the Diginetica teacher: SR-GNN's 50.73 / 17.59, + 3% relative.
pub const BAR_P20: f64 = 52.25;
pub const BAR_MRR20: f64 = 18.12;
/// GCE-GNN's published P@20 / MRR@20 on Diginetica, reported beside the bar.
pub const GCE_GNN: (f64, f64) = (54.22, 19.04);

/// The metric each dataset's student is judged on, and the ones its table reports.
#[derive(Debug, Clone, Copy)]
pub struct Judged {
    pub metric: &'static str,
    pub keys: &'static [&'static str],
}

impl Judged {
    fn of(dataset: &str) -> Self {
        match dataset {
            "diginetica" => Self { metric: "mrr@20", keys: &["p@20", "mrr@20", "ndcg@10"] },
            _ => Self { metric: "ndcg@10", keys: &["ndcg@10", "hr@10"] },
        }
    }
}

/// The Diginetica teacher against [`BAR_P20`] / [`BAR_MRR20`].
#[derive(Debug, Clone, Copy)]
pub struct TeacherBar {
    pub p20: f64,
    pub mrr20: f64,
    pub met: bool,
}

/// A KD student of one width and its no-KD twin (same width), if run.
#[derive(Debug, Clone, Copy)]
pub struct SizeRow<'a> {
    pub kd: &'a Run,
    pub no_kd: Option<&'a Run>,
}

/// The checks of one dataset.
#[derive(Debug)]
pub struct Summary<'a> {
    pub dataset: &'a str,
    pub runs: &'a DatasetRuns,
    pub judged: Judged,
    /// The judged metric of the teacher, the student and the no-KD student.
    pub teacher_score: f64,
    pub student_score: f64,
    pub no_kd_score: Option<f64>,
    /// Student / teacher and student / no-KD on the judged metric (ratios).
    pub student_over_teacher: f64,
    pub student_over_no_kd: Option<f64>,
    /// The same in percent, as the Markdown states them (KD as a gain over no-KD).
    pub student_pct_of_teacher: f64,
    pub kd_gain_pct: Option<f64>,
    /// Teacher bytes / student bytes: as shipped (full / browser) and like for like.
    pub teacher_full_over_student_browser: f64,
    pub teacher_full_over_student_full: f64,
    pub teacher_browser_over_student_browser: f64,
    pub teacher_bar: Option<TeacherBar>,
    pub sizes: Vec<SizeRow<'a>>,
}

fn pct(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { 100.0 * a / b }
}

fn bytes_ratio(a: u64, b: u64) -> f64 {
    a as f64 / b.max(1) as f64
}

/// The numbers and checks of `runs`.
pub fn summarise<'a>(dataset: &'a str, runs: &'a DatasetRuns) -> Summary<'a> {
    let judged = Judged::of(dataset);
    let (teacher, student) = (&runs.teacher, &runs.student);
    let t = teacher.metric(judged.metric).unwrap_or(0.0);
    let s = student.metric(judged.metric).unwrap_or(0.0);
    let n = runs.no_kd.as_ref().and_then(|r| r.metric(judged.metric));
    let teacher_bar = (dataset == "diginetica").then(|| {
        let (p20, mrr20) =
            (teacher.metric("p@20").unwrap_or(0.0), teacher.metric("mrr@20").unwrap_or(0.0));
        TeacherBar { p20, mrr20, met: p20 >= BAR_P20 && mrr20 >= BAR_MRR20 }
    });
    let no_kd_of = |r: &Run| runs.sizes_no_kd.iter().find(|n| n.d_model() == r.d_model());
    Summary {
        dataset,
        runs,
        judged,
        teacher_score: t,
        student_score: s,
        no_kd_score: n,
        student_over_teacher: s / t.max(1e-12),
        student_over_no_kd: n.map(|n| s / n.max(1e-12)),
        student_pct_of_teacher: pct(s, t),
        kd_gain_pct: n.map(|n| pct(s, n) - 100.0),
        teacher_full_over_student_browser: bytes_ratio(teacher.full_bytes, student.browser_bytes),
        teacher_full_over_student_full: bytes_ratio(teacher.full_bytes, student.full_bytes),
        teacher_browser_over_student_browser: bytes_ratio(
            teacher.browser_bytes,
            student.browser_bytes,
        ),
        teacher_bar,
        sizes: runs.sizes.iter().map(|kd| SizeRow { kd, no_kd: no_kd_of(kd) }).collect(),
    }
}
