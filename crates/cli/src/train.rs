//! `sessionrank train`: tokenizer, features, training, evaluation against the baselines, then
//! the bundle, the results file and the report (each only when asked for).

use burn::module::Module;
use burn::tensor::Device;
use sessionrank_model::ModelConfig;
use sessionrank_train::device::{machine_description, pick};
use sessionrank_train::pipeline::{
    Evaluation, ExperimentRecord, FeatureOptions, build_encoder, bundle_for, complete_config,
    evaluate, train_on, weight_bytes,
};
use sessionrank_train::{TrainConfig, report, results};

use crate::output::write_json;
use crate::plan::TrainPlan;

pub fn run(plan: TrainPlan) -> anyhow::Result<()> {
    eprintln!("{}", plan.imported.summary);
    let dataset = &plan.imported.dataset;
    let m = &plan.config.model;
    let encoder = build_encoder(dataset, &FeatureOptions::default(), m.max_len, m.max_candidates)?;
    let config =
        TrainConfig { model: complete_config(plan.config.model.clone(), &encoder), ..plan.config };
    if plan.size_only {
        print_size(&config.model);
        return Ok(());
    }
    let picked = pick(plan.device)?;
    tracing::info!(
        "training on {}: {} sessions, {} items",
        picked.description,
        dataset.train.len(),
        dataset.catalog.len()
    );
    let outcome = train_on(dataset, &encoder, &config, &picked.device, &plan.outputs)?;
    tracing::info!("trained in {:.0} s (best epoch {})", outcome.train_seconds, outcome.best_epoch);
    let evaluation = evaluate(&outcome.model, &encoder, dataset, &picked.device, &plan.eval);
    print_evaluation(&evaluation);
    let record = ExperimentRecord {
        command: plan.command,
        device: picked.description,
        machine: machine_description(),
        dataset: dataset.name.clone(),
        train_seconds: outcome.train_seconds,
        targets_per_second: outcome.targets_per_second,
        best_epoch: outcome.best_epoch,
        config: serde_json::to_value(&config)?,
        weight_bytes: weight_bytes(&outcome.model),
        history: outcome.history.clone(),
        evaluation,
    };
    if let Some(out) = &plan.outputs.bundle_dir {
        let metrics = serde_json::json!({"test": record.evaluation.model.full});
        let bundle = bundle_for(
            dataset,
            &config.model,
            &outcome.model,
            &encoder,
            metrics,
            plan.safetensors,
        )?;
        bundle.write_dir(out)?;
        println!("bundle {} written to {}", bundle.manifest.model_version, out.display());
    }
    if let Some(path) = &plan.results {
        write_json(path, &results::quality_json(&record))?;
    }
    if let Some(path) = &plan.report {
        report::write_report(path, &record)?;
    }
    Ok(())
}

/// `--size-only`: the parameter count and weight bytes of the full and the browser model.
fn print_size(config: &ModelConfig) {
    let model = config.init(&Device::flex());
    // What a browser downloads: the same model without its catalog-sized tables.
    let browser = sessionrank_core::browser::browser_config(config).init(&Device::flex());
    println!(
        "d_model {} layers {} heads {} d_ff {} max_len {} items {}: {} parameters, {} weight \
         bytes; browser bundle: {} parameters, {} weight bytes",
        config.d_model,
        config.n_layers,
        config.n_heads,
        config.d_ff,
        config.max_len,
        config.n_items,
        model.num_params(),
        weight_bytes(&model),
        browser.num_params(),
        weight_bytes(&browser)
    );
}

/// The test metrics of the model and of each baseline.
fn print_evaluation(evaluation: &Evaluation) {
    let m = &evaluation.model.full;
    println!(
        "test: P@20 {:.2}  MRR@20 {:.2}  HR@10 {:.4}  NDCG@10 {:.4}  ({} cases)",
        m.p_at_20, m.mrr_at_20, m.hr_at_10, m.ndcg_at_10, m.cases
    );
    for (name, b) in &evaluation.baselines {
        let f = &b.full;
        if f.cases > 0 {
            println!(
                "  {name:<14} P@20 {:.2}  MRR@20 {:.2}  HR@10 {:.4}  NDCG@10 {:.4}",
                f.p_at_20, f.mrr_at_20, f.hr_at_10, f.ndcg_at_10
            );
        }
    }
}
