//! `sessionrank eval`: a bundle (and the baselines) on a dataset's test split.

use anyhow::{Context, bail};
use burn::tensor::Device;
use sessionrank_core::{ModelBundle, Reranker};
use sessionrank_train::pipeline::evaluate;

use crate::output::write_json;
use crate::plan::EvalPlan;

pub fn run(plan: EvalPlan) -> anyhow::Result<()> {
    let dataset = plan.imported.dataset;
    let bundle = ModelBundle::read_dir(&plan.bundle)
        .with_context(|| format!("reading bundle {}", plan.bundle.display()))?;
    let device = Device::flex();
    let reranker = Reranker::from_bundle(&bundle, &device)?;
    if reranker.encoder().n_items() != dataset.catalog.len() {
        bail!(
            "bundle has {} items, dataset {} has {}: was it trained on this dataset?",
            reranker.encoder().n_items(),
            dataset.name,
            dataset.catalog.len()
        );
    }
    let evaluation = evaluate(reranker.model(), reranker.encoder(), &dataset, &device, &plan.eval);
    println!("{}", serde_json::to_string_pretty(&evaluation.model.full)?);
    if let Some(path) = &plan.results {
        write_json(path, &evaluation)?;
    }
    Ok(())
}
