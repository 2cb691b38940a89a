//! `sessionrank import`: a dataset's counts (to check against its README), its profile and the
//! preset `train` would start from.

use anyhow::Context;

use crate::plan::ImportPlan;

pub fn run(plan: ImportPlan) -> anyhow::Result<()> {
    println!("{}", plan.imported.summary);
    println!("profile: {}", plan.profile);
    let config = sessionrank_train::TrainConfig::preset(&plan.profile);
    let m = &config.model;
    let softmax = match config.negatives {
        0 => "full softmax".to_string(),
        n => format!("{n} sampled negatives"),
    };
    let logits = match m.logit_scale {
        Some(s) => format!("cosine logits ×{s}"),
        None => "dot-product logits".to_string(),
    };
    println!(
        "preset: {} (d_model {}, layers {}, heads {}, d_ff {}, max_len {}, dropout {}, {logits}; \
         {softmax}; at most {} epochs, patience {}; history excluded from evaluation: {})",
        plan.preset,
        m.d_model,
        m.n_layers,
        m.n_heads,
        m.d_ff,
        m.max_len,
        m.dropout,
        config.max_epochs,
        config.patience,
        config.exclude_history
    );
    if let Some(out) = plan.out {
        let json = serde_json::to_vec(&plan.imported.dataset)?;
        std::fs::write(&out, json).with_context(|| format!("writing {}", out.display()))?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
