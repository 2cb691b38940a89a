//! `results/quality-*.json`: the machine-readable figures the issues name.

use serde_json::{Map, Value, json};

use crate::pipeline::{ExperimentRecord, SystemMetrics};

/// One system's figures as `results/*.json` spell them: `p@20`, `mrr@20`, `hr@10`, … of the
/// full ranking, then `sampled99_`, `popsampled99_`, `retriever100_` ones of the re-ranks.
pub fn metrics_of(s: &SystemMetrics) -> Value {
    let f = &s.full;
    let mut m = Map::new();
    if f.cases > 0 {
        m.insert("p@20".into(), json!(round(f.p_at_20, 2)));
        m.insert("mrr@20".into(), json!(round(f.mrr_at_20, 2)));
        m.insert("hr@10".into(), json!(round(f.hr_at_10, 4)));
        m.insert("ndcg@10".into(), json!(round(f.ndcg_at_10, 4)));
        m.insert("hr@20".into(), json!(round(f.hr_at_20, 4)));
        m.insert("ndcg@20".into(), json!(round(f.ndcg_at_20, 4)));
    }
    for (label, r) in &s.rerank {
        let key = match label.as_str() {
            "uniform-99" => "sampled99",
            "popularity-99" => "popsampled99",
            "retriever-100" => "retriever100",
            other => other,
        };
        m.insert(format!("{key}_hr@10"), json!(round(r.hr_at_10, 4)));
        m.insert(format!("{key}_ndcg@10"), json!(round(r.ndcg_at_10, 4)));
        m.insert(format!("{key}_mrr@20"), json!(round(r.mrr_at_20, 2)));
        if let Some(rec) = r.retriever_recall {
            m.insert(format!("{key}_recall"), json!(round(rec, 4)));
        }
    }
    Value::Object(m)
}

fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

/// The shape the issues ask for, plus context (config, curve, re-rank cases).
pub fn quality_json(r: &ExperimentRecord) -> Value {
    let baselines: Map<String, Value> =
        r.evaluation.baselines.iter().map(|(k, v)| (k.clone(), metrics_of(v))).collect();
    json!({
        "command": r.command,
        "device": r.device,
        "machine": r.machine,
        "dataset": r.dataset,
        "train_seconds": round(r.train_seconds, 1),
        "metrics": metrics_of(&r.evaluation.model),
        "baselines": baselines,
        "test_cases": r.evaluation.model.full.cases,
        "rerank_cases": r.evaluation.model.rerank.values().next().map(|m| m.cases).unwrap_or(0),
        "best_epoch": r.best_epoch,
        "targets_per_second": round(r.targets_per_second, 1),
        "weight_bytes": r.weight_bytes,
        "config": r.config,
        "history": r.history,
        "by_length": r.evaluation.model.full.by_length,
    })
}
