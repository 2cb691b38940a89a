//! `sessionrank eval`: a bundle, or an ensemble of bundles, (and the baselines) on a dataset's
//! test split; with `--rules` (one bundle), also the shop's rules on the retriever-100 lists
//! (`sessionrank_train::controls`).

use anyhow::{Context, bail};
use burn::tensor::Device;
use sessionrank_core::{ModelBundle, Reranker, Rules};
use sessionrank_train::Teacher;
use sessionrank_train::controls::RuleBench;
use sessionrank_train::pipeline::{evaluate, evaluate_scorer, rerank_subset};
use sessionrank_train::results::metrics_of;

use crate::output::write_json;
use crate::plan::EvalPlan;

pub fn run(plan: EvalPlan) -> anyhow::Result<()> {
    let dataset = plan.imported.dataset;
    let device = Device::flex();
    // One bundle: its engine (the rules are measured on it). Several: an ensemble (e.g. a
    // distillation teacher made of seeds), scored through the teacher's scorer.
    let (evaluation, reranker) = if plan.bundles.len() > 1 {
        let teacher = Teacher::load_all(&plan.bundles, &dataset.catalog, &device)?;
        (evaluate_scorer(&teacher, &dataset, &plan.eval), None)
    } else {
        let Some(path) = plan.bundles.first() else { bail!("--bundle: give a bundle directory") };
        let bundle = ModelBundle::read_dir(path)
            .with_context(|| format!("reading bundle {}", path.display()))?;
        let reranker = Reranker::from_bundle(&bundle, &device)?;
        if reranker.encoder().n_items() != dataset.catalog.len() {
            bail!(
                "bundle has {} items, dataset {} has {}: was it trained on this dataset?",
                reranker.encoder().n_items(),
                dataset.name,
                dataset.catalog.len()
            );
        }
        let evaluation =
            evaluate(reranker.model(), reranker.encoder(), &dataset, &device, &plan.eval);
        (evaluation, Some(reranker))
    };
    println!("{}", serde_json::to_string_pretty(&evaluation.model.full)?);
    let mut out = serde_json::to_value(&evaluation)?;
    out["metrics"] = metrics_of(&evaluation.model);
    if plan.bundles.len() > 1 {
        out["bundles"] = serde_json::json!(plan.bundles);
    }
    // `--rules` comes with one bundle only (checked by the plan).
    if let (Some(rules), Some(reranker)) = (&plan.rules, &reranker) {
        // The same re-rank cases as the evaluation's, each list scored once and ordered with
        // and without the rules.
        let cases = rerank_subset(&dataset, plan.eval.rerank_cases, plan.eval.seed);
        let bench = RuleBench::new(reranker, &dataset)?;
        let (metrics, recall) = bench.measure(&cases, &[Rules::default(), rules.clone()])?;
        let report = serde_json::json!({
            "protocol": "retriever-100",
            "cases": cases.len(),
            "retriever_recall@100": recall,
            "rules": rules,
            "without_rules": metrics.first(),
            "with_rules": metrics.get(1),
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        out["rules"] = report;
    }
    if let Some(path) = &plan.results {
        write_json(path, &out)?;
    }
    Ok(())
}
