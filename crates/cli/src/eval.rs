//! `sessionrank eval`: a bundle, or an ensemble of bundles, (and the baselines) on a dataset's
//! test split; with `--rules` (one bundle), also the shop's rules on the retriever-100 lists
//! (`sessionrank_train::controls`); with `--knn-blend`, the hybrid of the model(s) with
//! session-kNN, its weight chosen on validation.

use anyhow::{Context, bail};
use burn::tensor::Device;
use sessionrank_core::{ModelBundle, Reranker, Rules};
use sessionrank_data::Dataset;
use sessionrank_data::baselines::SessionKnn;
use sessionrank_data::blend::{KnnBlend, blend_sweep};
use sessionrank_train::Teacher;
use sessionrank_train::controls::RuleBench;
use sessionrank_train::device::machine_description;
use sessionrank_train::pipeline::{
    EvalOptions, Evaluation, evaluate, evaluate_scorer, rerank_subset,
};
use sessionrank_train::results::metrics_of;

use crate::output::write_json;
use crate::plan::EvalPlan;

pub fn run(plan: EvalPlan) -> anyhow::Result<()> {
    let dataset = plan.imported.dataset;
    let device = Device::flex();
    let mut blend = None;
    // One bundle: its engine (the rules are measured on it). Several: an ensemble (e.g. a
    // distillation teacher made of seeds), scored through the teacher's scorer.
    let (evaluation, reranker) = if !plan.knn_blend.is_empty() {
        let teacher = Teacher::load_all(&plan.bundles, &dataset.catalog, &device)?;
        let (evaluation, choice) =
            evaluate_knn_blend(&teacher, &dataset, &plan.knn_blend, &plan.eval)?;
        blend = Some(choice);
        (evaluation, None)
    } else if plan.bundles.len() > 1 {
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
    out["machine"] = serde_json::json!(machine_description());
    if plan.bundles.len() > 1 {
        out["bundles"] = serde_json::json!(plan.bundles);
    }
    if let Some(choice) = blend {
        out["knn_blend"] = choice;
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

/// The hybrid of `model` with session-kNN (fit on the training sessions, as the baseline is):
/// every weight of `weights` scored on the validation cases, the best by MRR@20 (the first
/// on a tie; 0, the model alone, comes first) then scored on the test set — the test is read once. Returns the
/// evaluation and the record of the choice.
fn evaluate_knn_blend(
    model: &Teacher,
    dataset: &Dataset,
    weights: &[f32],
    eval: &EvalOptions,
) -> anyhow::Result<(Evaluation, serde_json::Value)> {
    if dataset.valid.is_empty() {
        bail!("--knn-blend: {} has no validation cases to choose the weight on", dataset.name);
    }
    let knn = SessionKnn::fit(&dataset.train, dataset.catalog.len());
    tracing::info!(
        "choosing the kNN weight among {:?} on {} validation cases",
        weights,
        dataset.valid.len()
    );
    let swept = blend_sweep(model, &knn, &dataset.valid, weights, eval.exclude_history);
    let mut chosen = 0;
    for (i, m) in swept.iter().enumerate() {
        tracing::info!("validation, kNN weight {}: {m}", weights[i]);
        if m.mrr_at_20 > swept[chosen].mrr_at_20 {
            chosen = i;
        }
    }
    let weight = weights[chosen];
    tracing::info!("chosen kNN weight {weight}; scoring the test set");
    let hybrid = KnnBlend { model, knn, weight };
    let evaluation = evaluate_scorer(&hybrid, dataset, eval);
    let validation: Vec<serde_json::Value> = weights
        .iter()
        .zip(&swept)
        .map(|(w, m)| serde_json::json!({ "weight": tidy(*w), "metrics": m }))
        .collect();
    let record = serde_json::json!({
        "weights": weights.iter().copied().map(tidy).collect::<Vec<_>>(),
        "chosen_weight": tidy(weight),
        "chosen_on": "validation MRR@20",
        "validation_cases": dataset.valid.len(),
        "validation": validation,
    });
    Ok((evaluation, record))
}

/// A weight as written in the results (`0.9`, not the f32's `0.8999999761581421`).
fn tidy(w: f32) -> f64 {
    (f64::from(w) * 1e6).round() / 1e6
}
