//! Baseline numbers on the real datasets.
//!
//! `cargo run --release -p sessionrank-data --example baselines -- [diginetica|beauty|retailrocket|slice]`
//! (default: all). Diginetica: full ranking, no masking (SR-GNN protocol). Beauty: full ranking
//! with history excluded (S3-Rec protocol) plus the sampled 1+99 protocols.

use sessionrank_data::baselines::{ItemKnn, Popularity, SessionKnn};
use sessionrank_data::eval::{Scorer, UpstreamOrder, evaluate_full, evaluate_rerank};
use sessionrank_data::import::import_named;
use sessionrank_data::sample::{CandidateSampler, SamplerSpec};
use sessionrank_data::{Dataset, default_data_dir};
use std::time::Instant;

fn run_full(d: &Dataset, exclude: bool) {
    let n = d.catalog.len();
    let t = Instant::now();
    let scorers: Vec<Box<dyn Scorer>> = vec![
        Box::new(Popularity::fit(&d.train, n)),
        Box::new(ItemKnn::fit(&d.train, n)),
        Box::new(SessionKnn::fit(&d.train, n)),
    ];
    println!("  fit {:.1}s", t.elapsed().as_secs_f64());
    for s in &scorers {
        let t = Instant::now();
        let m = evaluate_full(s, &d.test, n, 256, exclude);
        println!(
            "  {:<32} full{}: {m}  ({:.1}s)",
            s.name(),
            if exclude { " excl-hist" } else { "" },
            t.elapsed().as_secs_f64()
        );
    }
}

fn run_rerank(d: &Dataset) {
    let n = d.catalog.len();
    let scorers: Vec<Box<dyn Scorer>> = vec![
        Box::new(UpstreamOrder { n_items: n }),
        Box::new(Popularity::fit(&d.train, n)),
        Box::new(ItemKnn::fit(&d.train, n)),
        Box::new(SessionKnn::fit(&d.train, n)),
    ];
    for spec in [
        SamplerSpec::uniform_99(2024),
        SamplerSpec::popularity_99(2024),
        SamplerSpec::retriever_100(),
    ] {
        let sampler = CandidateSampler::new(spec, &d.train, n);
        for s in &scorers {
            let t = Instant::now();
            let m = evaluate_rerank(s, &d.test, &sampler);
            println!(
                "  {:<32} {}: {m}  ({:.1}s)",
                s.name(),
                spec.label(),
                t.elapsed().as_secs_f64()
            );
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let which: Vec<String> = std::env::args().skip(1).collect();
    let all = which.is_empty();
    let dir = default_data_dir();
    for (name, key, exclude, rerank) in [
        ("diginetica", "diginetica", false, false),
        ("amazon-beauty", "beauty", true, true),
        ("retailrocket", "retailrocket", false, true),
        ("diginetica-slice", "slice", false, false),
    ] {
        if !all && !which.iter().any(|w| w == key || w == name) {
            continue;
        }
        let t = Instant::now();
        let imp = import_named(name, &dir)?;
        println!("== {name} (import {:.1}s)\n{}", t.elapsed().as_secs_f64(), imp.summary);
        run_full(&imp.dataset, exclude);
        if rerank {
            run_rerank(&imp.dataset);
        }
    }
    Ok(())
}
