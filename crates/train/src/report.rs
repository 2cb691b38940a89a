//! Markdown report with SVG plots (training curve; metric by session length), written next
//! to the results so a reader sees the numbers and the shape behind them.

use std::fmt::Write as _;
use std::path::Path;

use crate::pipeline::ExperimentRecord;
use crate::{Result, TrainError};

/// A minimal SVG line chart: one polyline per series over shared x labels.
pub fn line_chart(
    title: &str,
    x_labels: &[String],
    series: &[(String, Vec<f64>)],
    y_label: &str,
) -> String {
    let (w, h, left, right, top, bottom) = (640.0, 320.0, 60.0, 150.0, 30.0, 40.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let all: Vec<f64> =
        series.iter().flat_map(|(_, v)| v.iter().copied()).filter(|v| v.is_finite()).collect();
    let (mut lo, mut hi) = all.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    if !lo.is_finite() || !hi.is_finite() {
        lo = 0.0;
        hi = 1.0;
    }
    if (hi - lo).abs() < 1e-12 {
        hi = lo + 1.0;
    }
    let pad = (hi - lo) * 0.05;
    let (lo, hi) = (lo - pad, hi + pad);
    let n = x_labels.len().max(2);
    let x = |i: usize| left + pw * i as f64 / (n - 1) as f64;
    let y = |v: f64| top + ph * (1.0 - (v - lo) / (hi - lo));
    let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{}" y="18" font-size="13" font-weight="bold">{}</text>"#,
        left,
        esc(title)
    );
    let _ = write!(
        s,
        r#"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="black"/>"#,
        top + ph,
        left + pw,
        top + ph,
        top + ph
    );
    for k in 0..=4 {
        let v = lo + (hi - lo) * k as f64 / 4.0;
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end">{}</text><line x1="{left}" x2="{}" y1="{}" y2="{}" stroke="#ddd"/>"##,
            left - 4.0,
            y(v) + 4.0,
            fmt(v),
            left + pw,
            y(v),
            y(v)
        );
    }
    let step = (x_labels.len() / 10).max(1);
    for (i, l) in x_labels.iter().enumerate().step_by(step) {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            x(i),
            top + ph + 15.0,
            esc(l)
        );
    }
    let _ = write!(
        s,
        r#"<text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">{}</text>"#,
        top + ph / 2.0,
        top + ph / 2.0,
        esc(y_label)
    );
    for (k, (name, vals)) in series.iter().enumerate() {
        let c = colors[k % colors.len()];
        let pts: Vec<String> = vals
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, &v)| format!("{:.1},{:.1}", x(i), y(v)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{c}" stroke-width="2" points="{}"/>"#,
            pts.join(" ")
        );
        for p in &pts {
            let mut it = p.split(',');
            let _ = write!(
                s,
                r#"<circle cx="{}" cy="{}" r="2.5" fill="{c}"/>"#,
                it.next().unwrap_or("0"),
                it.next().unwrap_or("0")
            );
        }
        let ly = top + 14.0 * k as f64 + 6.0;
        let _ = write!(
            s,
            r#"<rect x="{}" y="{}" width="10" height="10" fill="{c}"/><text x="{}" y="{}">{}</text>"#,
            left + pw + 10.0,
            ly,
            left + pw + 24.0,
            ly + 9.0,
            esc(name)
        );
    }
    s.push_str("</svg>");
    s
}

fn fmt(v: f64) -> String {
    if v.abs() >= 10.0 { format!("{v:.1}") } else { format!("{v:.3}") }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Write `path` (Markdown) and two SVGs beside it.
pub fn write_report(path: &Path, r: &ExperimentRecord) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(TrainError::io(dir))?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    let curve_name = format!("{stem}-curve.svg");
    let length_name = format!("{stem}-by-length.svg");

    let epochs: Vec<String> = r.history.iter().map(|h| h.epoch.to_string()).collect();
    let curve = line_chart(
        &format!("{}: training loss and validation MRR@20", r.dataset),
        &epochs,
        &[
            ("train loss".into(), r.history.iter().map(|h| h.train_loss).collect()),
            (
                "valid MRR@20 / 10".into(),
                r.history.iter().map(|h| h.valid.mrr_at_20 / 10.0).collect(),
            ),
        ],
        "loss  |  MRR@20 (%) / 10",
    );
    std::fs::write(dir.join(&curve_name), curve).map_err(TrainError::io(dir))?;

    let model_buckets = &r.evaluation.model.full.by_length;
    let labels: Vec<String> = model_buckets.iter().map(|b| b.bucket.clone()).collect();
    let mut series = vec![(
        "sessionrank".to_string(),
        model_buckets.iter().map(|b| b.hr_at_20 * 100.0).collect::<Vec<_>>(),
    )];
    for (name, b) in &r.evaluation.baselines {
        if b.full.cases == 0 {
            continue;
        }
        let vals = labels
            .iter()
            .map(|l| {
                b.full
                    .by_length
                    .iter()
                    .find(|x| &x.bucket == l)
                    .map(|x| x.hr_at_20 * 100.0)
                    .unwrap_or(f64::NAN)
            })
            .collect();
        series.push((name.clone(), vals));
    }
    let by_len = line_chart(
        &format!("{}: HR@20 (%) by session length", r.dataset),
        &labels,
        &series,
        "HR@20 (%)",
    );
    std::fs::write(dir.join(&length_name), by_len).map_err(TrainError::io(dir))?;

    let mut md = String::new();
    let _ = writeln!(md, "# Quality on {}\n", r.dataset);
    let _ = writeln!(
        md,
        "Produced by `{}` on {} ({}). Training took {:.0} s (best epoch {}), {:.0} training targets/s; weights {} bytes.\n",
        r.command,
        r.machine,
        r.device,
        r.train_seconds,
        r.best_epoch,
        r.targets_per_second,
        r.weight_bytes
    );
    let _ = writeln!(
        md,
        "## Full ranking over the catalog ({} test cases)\n",
        r.evaluation.model.full.cases
    );
    let _ = writeln!(
        md,
        "| system | P@20 (%) | MRR@20 (%) | HR@10 | NDCG@10 |\n|---|---:|---:|---:|---:|"
    );
    let mut row = |name: &str, f: &sessionrank_data::RankingMetrics| {
        let _ = writeln!(
            md,
            "| {name} | {:.2} | {:.2} | {:.4} | {:.4} |",
            f.p_at_20, f.mrr_at_20, f.hr_at_10, f.ndcg_at_10
        );
    };
    row("**sessionrank**", &r.evaluation.model.full);
    for (name, b) in &r.evaluation.baselines {
        if b.full.cases > 0 {
            row(name, &b.full);
        }
    }
    if !r.evaluation.model.rerank.is_empty() {
        let _ = writeln!(
            md,
            "\n## Re-ranking 100 candidates (1 target + 99 others; {} cases)\n",
            r.evaluation.model.rerank.values().next().map(|m| m.cases).unwrap_or(0)
        );
        let _ = writeln!(
            md,
            "| system | protocol | HR@10 | NDCG@10 | MRR@20 (%) |\n|---|---|---:|---:|---:|"
        );
        let mut systems = vec![("**sessionrank**".to_string(), &r.evaluation.model)];
        systems.extend(r.evaluation.baselines.iter().map(|(k, v)| (k.clone(), v)));
        for (name, s) in systems {
            for (label, m) in &s.rerank {
                let _ = writeln!(
                    md,
                    "| {name} | {label} | {:.4} | {:.4} | {:.2} |",
                    m.hr_at_10, m.ndcg_at_10, m.mrr_at_20
                );
            }
        }
        if let Some(rec) =
            r.evaluation.model.rerank.get("retriever-100").and_then(|m| m.retriever_recall)
        {
            let _ = writeln!(
                md,
                "\nThe co-occurrence retriever returns the target in {:.1}% of cases: the ceiling of every HR on that protocol.",
                rec * 100.0
            );
        }
    }
    let _ = writeln!(md, "\n## Training curve\n\n![training curve]({curve_name})\n");
    let _ = writeln!(
        md,
        "| epoch | train loss | valid P@20 | valid MRR@20 | lr | seconds |\n|---:|---:|---:|---:|---:|---:|"
    );
    for h in &r.history {
        let _ = writeln!(
            md,
            "| {} | {:.4} | {:.2} | {:.2} | {:.2e} | {:.0} |",
            h.epoch, h.train_loss, h.valid.p_at_20, h.valid.mrr_at_20, h.lr, h.seconds
        );
    }
    let _ = writeln!(md, "\n## By session length\n\n![HR@20 by session length]({length_name})\n");
    std::fs::write(path, md).map_err(TrainError::io(path))?;
    Ok(())
}
