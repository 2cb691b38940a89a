//! `sessionrank list-stage`: a trained bundle's list scorer (upstream-rank bias, optional list
//! context) trained on retriever lists with its towers frozen, scored on the retriever-100
//! protocol before and after, and written as a new bundle.

use anyhow::{Context, bail};
use sessionrank_core::{ModelBundle, Reranker};
use sessionrank_train::device::{machine_description, pick};
use sessionrank_train::listwise::{ListAwareScorer, evaluate_listwise, train_list_scorer};
use sessionrank_train::pipeline::bundle_for;

use crate::output::write_json;
use crate::plan::ListStagePlan;

pub fn run(plan: ListStagePlan) -> anyhow::Result<()> {
    let dataset = &plan.imported.dataset;
    let bundle = ModelBundle::read_dir(&plan.bundle)
        .with_context(|| format!("reading bundle {}", plan.bundle.display()))?;
    let picked = pick(plan.device)?;
    let device = picked.device;
    let inner = device.clone().inner();
    let engine = Reranker::from_bundle(&bundle, &inner)?;
    if engine.encoder().n_items() != dataset.catalog.len() {
        bail!(
            "bundle has {} items, dataset {} has {}: was it trained on this dataset?",
            engine.encoder().n_items(),
            dataset.name,
            dataset.catalog.len()
        );
    }
    let config = bundle.manifest.config.clone();
    let before = evaluate_listwise(
        &ListAwareScorer::new(engine.model().clone(), engine.encoder(), &config, &inner),
        dataset,
        plan.rerank_cases,
        plan.seed,
    );
    let (model, out_config, report) = train_list_scorer(
        engine.model(),
        &config,
        engine.encoder(),
        dataset,
        &plan.listwise,
        &device,
    )?;
    let after = evaluate_listwise(
        &ListAwareScorer::new(model.clone(), engine.encoder(), &out_config, &inner),
        dataset,
        plan.rerank_cases,
        plan.seed,
    );
    println!(
        "retriever-100 ({} cases): NDCG@10 {:.4} -> {:.4}, HR@10 {:.4} -> {:.4}, \
         MRR@20 {:.2} -> {:.2}",
        after.cases,
        before.ndcg_at_10,
        after.ndcg_at_10,
        before.hr_at_10,
        after.hr_at_10,
        before.mrr_at_20,
        after.mrr_at_20
    );
    let metrics = serde_json::json!({
        "test": bundle.manifest.metrics.get("test"),
        "retriever-100 list scorer": after,
    });
    let out = bundle_for(
        dataset,
        &out_config,
        &model,
        engine.encoder(),
        metrics,
        bundle.files.contains_key("model.safetensors"),
    )?;
    out.write_dir(&plan.out)?;
    let browser = out.browser()?;
    let browser_bytes =
        browser.files.get(sessionrank_core::bundle::WEIGHTS).map(Vec::len).unwrap_or(0);
    println!(
        "bundle {} written to {} (browser weights {browser_bytes} bytes)",
        out.manifest.model_version,
        plan.out.display()
    );
    if let Some(path) = &plan.results {
        let value = serde_json::json!({
            "command": plan.command,
            "device": picked.description,
            "machine": machine_description(),
            "dataset": dataset.name,
            "bundle": plan.bundle.display().to_string(),
            "list_context": plan.listwise.list_context,
            "retriever100_before": before,
            "retriever100_after": after,
            "stage": report,
            "browser_weight_bytes": browser_bytes,
        });
        write_json(path, &value)?;
    }
    Ok(())
}
