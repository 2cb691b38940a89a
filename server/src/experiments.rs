//! Experiment subcommands beyond train/eval: the list-wise stage of a trained bundle and the
//! distillation report. Thin: the work is in `sessionrank_train::{listwise, distill_report}`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use sessionrank_core::{ModelBundle, Reranker};
use sessionrank_data::import::import_named;
use sessionrank_train::listwise::{
    ListAwareScorer, ListwiseConfig, evaluate_listwise, train_list_scorer,
};
use sessionrank_train::device::machine_description;
use sessionrank_train::pipeline::bundle_for;

use crate::cli::{DataArgs, DeviceArg, command_line, data_dir, device, write_json};

#[derive(Debug, Args)]
pub struct ListStageArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Trained bundle whose list scorer to train (its towers are kept as they are).
    #[arg(long)]
    pub bundle: PathBuf,
    /// Where to write the bundle with the trained list scorer.
    #[arg(long)]
    pub out: PathBuf,
    /// Add self-attention over the candidate list (PRM's list context); without it only the
    /// upstream-rank bias is trained.
    #[arg(long)]
    pub list_context: bool,
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Lists drawn from held-out training sessions.
    #[arg(long, default_value_t = 20000)]
    pub cases: usize,
    /// Test cases of the retriever-100 protocol, before and after.
    #[arg(long, default_value_t = 5000)]
    pub rerank_cases: usize,
    #[arg(long)]
    pub results: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = DeviceArg::Flex)]
    pub device: DeviceArg,
}

pub fn list_stage(a: ListStageArgs) -> anyhow::Result<()> {
    let name = a.data.dataset.clone();
    let dataset = import_named(&name, &data_dir(&a.data))
        .with_context(|| format!("importing {name}"))?
        .dataset;
    let bundle = ModelBundle::read_dir(&a.bundle)
        .with_context(|| format!("reading bundle {}", a.bundle.display()))?;
    let (device, device_name) = device(a.device)?;
    let engine = Reranker::from_bundle(&bundle, &device.clone().inner())?;
    if engine.encoder().n_items() != dataset.catalog.len() {
        bail!(
            "bundle has {} items, dataset {} has {}: was it trained on this dataset?",
            engine.encoder().n_items(),
            dataset.name,
            dataset.catalog.len()
        );
    }
    let config = bundle.manifest.config.clone();
    let inner = device.clone().inner();
    let seed = 42;
    let before = evaluate_listwise(
        &ListAwareScorer::new(engine.model().clone(), engine.encoder(), &config, &inner),
        &dataset,
        a.rerank_cases,
        seed,
    );
    let lw = ListwiseConfig::new()
        .with_list_context(a.list_context)
        .with_epochs(a.epochs)
        .with_cases(a.cases);
    let (model, out_config, report) =
        train_list_scorer(engine.model(), &config, engine.encoder(), &dataset, &lw, &device)?;
    let after = evaluate_listwise(
        &ListAwareScorer::new(model.clone(), engine.encoder(), &out_config, &inner),
        &dataset,
        a.rerank_cases,
        seed,
    );
    println!(
        "retriever-100 ({} cases): NDCG@10 {:.4} -> {:.4}, HR@10 {:.4} -> {:.4}, MRR@20 {:.2} -> {:.2}",
        after.cases,
        before.ndcg_at_10,
        after.ndcg_at_10,
        before.hr_at_10,
        after.hr_at_10,
        before.mrr_at_20,
        after.mrr_at_20
    );
    let metrics = serde_json::json!({"test": bundle.manifest.metrics.get("test"), "retriever-100 list scorer": after});
    let out = bundle_for(
        &dataset,
        &out_config,
        &model,
        engine.encoder(),
        metrics,
        bundle.files.contains_key("model.safetensors"),
    )?;
    out.write_dir(&a.out)?;
    let browser = out.browser()?;
    let browser_bytes =
        browser.files.get(sessionrank_core::bundle::WEIGHTS).map(Vec::len).unwrap_or(0);
    println!(
        "bundle {} written to {} (browser weights {browser_bytes} bytes)",
        out.manifest.model_version,
        a.out.display()
    );
    if let Some(path) = &a.results {
        let value = serde_json::json!({
            "command": command_line(),
            "device": device_name,
            "machine": machine_description(),
            "dataset": dataset.name,
            "bundle": a.bundle.display().to_string(),
            "list_context": a.list_context,
            "retriever100_before": before,
            "retriever100_after": after,
            "stage": report,
            "browser_weight_bytes": browser_bytes,
        });
        write_json(path, &value)?;
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct DistillReportArgs {
    /// Directory of the runs (`<runs>/<dataset>/<run>/{result.json,bundle/}`).
    #[arg(long)]
    pub runs: PathBuf,
    /// The command that produced the runs, recorded in the report.
    #[arg(long, default_value = "scripts/distill")]
    pub command: String,
    #[arg(long, default_value = "results/distill.json")]
    pub out: PathBuf,
    #[arg(long, default_value = "docs/distill.md")]
    pub doc: PathBuf,
}

pub fn distill_report(a: DistillReportArgs) -> anyhow::Result<()> {
    let paths = sessionrank_train::distill_report::ReportPaths {
        json: a.out.clone(),
        markdown: a.doc.clone(),
    };
    let value = sessionrank_train::distill_report::write_distill_report(
        &a.runs,
        &a.command,
        &machine_description(),
        &paths,
    )?;
    println!("{}", serde_json::to_string_pretty(&value["datasets"])?);
    println!("wrote {} and {}", a.out.display(), a.doc.display());
    Ok(())
}
