//! `results/controls.json`: what the business rules cost in accuracy and buy in variety, on
//! real retriever-100 lists (the sweep is `sessionrank_train::controls`).
//!
//! ```text
//! cargo run --release -p sessionrank-train --example controls -- \
//!     [--data-dir DIR] [--cases N] [--out results/controls.json] NAME=BUNDLE_DIR …
//! ```
//!
//! Without `--cases`, every validation case.
//! `NAME` is a dataset of `import_named` (`diginetica`, `amazon-beauty`), `BUNDLE_DIR` a full
//! bundle trained on it. Cases are a fixed random subset of the **validation** cases (never
//! the test cases). For Diginetica the validation sessions are held out of the retriever's
//! training sessions here, and `sessionrank train` holds them out too (its default since
//! 2026-12-03); a bundle trained before then saw them, which the output says.
//!
//! Keys of an existing output file that this run does not write (the browser benchmark's
//! `rules_overhead_p50_ms`, from `scripts/bench-rules`) are kept.

use std::path::PathBuf;

use burn::tensor::Device;
use sessionrank_core::{ModelBundle, Reranker, Rules};
use sessionrank_data::import::{DigineticaOptions, import_diginetica, import_named};
use sessionrank_data::{Dataset, TestCase, default_data_dir};
use sessionrank_train::controls::{LAMBDAS, LIMITS, RuleBench};
use sessionrank_train::device::machine_description;

type Error = Box<dyn std::error::Error>;

struct Args {
    data_dir: PathBuf,
    cases: usize,
    out: PathBuf,
    runs: Vec<(String, PathBuf)>,
}

fn args() -> Result<Args, Error> {
    let mut a = Args {
        data_dir: default_data_dir(),
        cases: usize::MAX,
        out: PathBuf::from("results/controls.json"),
        runs: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--data-dir" => a.data_dir = value()?.into(),
            "--cases" => a.cases = value()?.parse()?,
            "--out" => a.out = value()?.into(),
            run => {
                let (name, dir) = run
                    .split_once('=')
                    .ok_or_else(|| format!("expected NAME=BUNDLE, got {run}"))?;
                a.runs.push((name.to_string(), dir.into()));
            }
        }
    }
    if a.runs.is_empty() {
        return Err("give at least one NAME=BUNDLE_DIR".into());
    }
    Ok(a)
}

/// The dataset with its validation sessions held out of the training sessions (the
/// retriever's), where the importer can.
fn dataset(name: &str, data_dir: &std::path::Path) -> Result<(Dataset, bool), Error> {
    Ok(match name {
        "diginetica" => {
            let options = DigineticaOptions { holdout_valid: true, ..DigineticaOptions::default() };
            (import_diginetica(&data_dir.join("diginetica"), &options)?.dataset, true)
        }
        other => (import_named(other, data_dir)?.dataset, false),
    })
}

/// What the validation cases are, said in the output.
fn note(held_out: bool) -> &'static str {
    if held_out {
        "validation prefixes of the most recent training sessions, which the retriever was fit \
         without; a bundle trained before 2026-12-03 trained on them (later ones hold them out), \
         so with such a bundle its accuracy here is optimistic: read the differences"
    } else {
        "leave-one-out validation: each history's second-to-last item, which neither the \
         bundle nor the retriever trained on"
    }
}

/// A fixed random subset of `cases` (seeded), in their order.
fn subset(cases: &[TestCase], count: usize) -> Vec<TestCase> {
    use rand::SeedableRng;
    use rand::seq::index::sample;
    if cases.len() <= count {
        return cases.to_vec();
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut idx = sample(&mut rng, cases.len(), count).into_vec();
    idx.sort_unstable();
    idx.into_iter().map(|i| cases[i].clone()).collect()
}

fn main() -> Result<(), Error> {
    let a = args()?;
    let mut out: serde_json::Map<String, serde_json::Value> = std::fs::read(&a.out)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let command = std::iter::once(
        "cargo run --release -p sessionrank-train --example controls --".to_string(),
    )
    .chain(std::env::args().skip(1))
    .collect::<Vec<_>>()
    .join(" ");
    let mut datasets = serde_json::Map::new();
    for (name, dir) in &a.runs {
        let started = std::time::Instant::now();
        let (dataset, held_out) = dataset(name, &a.data_dir)?;
        let bundle = ModelBundle::read_dir(dir)?;
        let engine = Reranker::from_bundle(&bundle, &Device::flex())?;
        let cases = subset(&dataset.valid, a.cases);
        eprintln!("{name}: {} of {} validation cases", cases.len(), dataset.valid.len());
        let bench = RuleBench::new(&engine, &dataset)?;
        let c = bench.sweep(&cases)?;
        let m = |x: f64| (x * 1e4).round() / 1e4;
        let point = |metrics: &sessionrank_train::controls::ListMetrics| {
            serde_json::json!({
                "ndcg@10": m(metrics.ndcg),
                "hr@10": m(metrics.hr),
                "category_coverage@10": m(metrics.category_coverage),
                "ild@10": m(metrics.ild),
            })
        };
        let with = |mut v: serde_json::Value, key: &str, x: serde_json::Value| {
            v[key] = x;
            v
        };
        let mmr: Vec<_> = c
            .mmr
            .iter()
            .map(|p| with(point(&p.metrics), "lambda", m(f64::from(p.lambda)).into()))
            .collect();
        // The shop's own order (blend 0: the retriever's), for scale.
        let shop = Rules { blend: 0.0, ..Rules::default() };
        let (shop_order, _) = bench.measure(&cases, &[shop])?;
        let max_move: Vec<_> =
            c.max_move.iter().map(|p| with(point(&p.metrics), "limit", p.limit.into())).collect();
        eprintln!("{name}: done in {:.0} s", started.elapsed().as_secs_f64());
        datasets.insert(
            dataset.name.clone(),
            serde_json::json!({
                "mmr": mmr,
                "max_move": max_move,
                "shop_order": shop_order.first().map(point),
                "cases": c.cases,
                "split": "validation",
                "retriever_recall@100": m(c.retriever_recall),
                "note": note(held_out),
                "bundle": dir.display().to_string(),
                "model_version": bundle.manifest.model_version,
                // How good the bundle is on the test split (its manifest's numbers), to set it
                // beside the reported models of results/quality-*.json.
                "bundle_test_metrics": bundle.manifest.metrics.get("test").map(|t| {
                    serde_json::json!({
                        "ndcg@10": t.get("ndcg_at_10"),
                        "hr@10": t.get("hr_at_10"),
                        "hr@20": t.get("hr_at_20"),
                        "mrr@20": t.get("mrr_at_20"),
                    })
                }),
            }),
        );
    }
    out.insert("command".into(), command.into());
    out.insert("machine".into(), machine_description().into());
    out.insert(
        "protocol".into(),
        format!(
            "retriever-100 lists (item-kNN over the training sessions; its order is the shop's \
             order); the model scores each list as the product does; every rule variant \
             re-orders the same scores with sessionrank_core::rules::arrange. mmr: diversity λ \
             in {LAMBDAS:?} (depth 20, cosine over the model's item vectors); max_move: \
             maxDisplacement in {limits} (null = none); shop_order: blend 0. Metrics of the top \
             10 averaged over cases; a target the retriever missed is a miss.",
            limits = LIMITS
                .iter()
                .map(|l| l.map_or("null".to_string(), |l| l.to_string()))
                .collect::<Vec<_>>()
                .join(", "),
        )
        .into(),
    );
    out.insert("datasets".into(), datasets.into());
    if let Some(p) = a.out.parent() {
        std::fs::create_dir_all(p)?;
    }
    std::fs::write(&a.out, serde_json::to_string_pretty(&out)? + "\n")?;
    eprintln!("wrote {}", a.out.display());
    Ok(())
}
