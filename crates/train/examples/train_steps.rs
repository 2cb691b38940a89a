//! Where a training step's time goes, on the real Diginetica data (issue 20): one epoch over
//! the most recent sessions with the headline configuration (d 96, 1 layer, 16,384 sampled
//! negatives, cosine logits ×16), then the wall time, the process's user and system CPU time
//! (from `/proc/self/stat`) and the targets per second, as one JSON line.
//!
//! ```text
//! cargo run --release -p sessionrank-train --example train_steps -- [SESSIONS] [THREADS] [glibc]
//! ```
//!
//! SESSIONS (default 20,000) most recent training sessions, THREADS the step's threads
//! (`TrainConfig.threads`, default 1); `glibc` leaves glibc's allocator at its defaults
//! instead of [`sessionrank_train::memory::keep_freed_memory`], which `sessionrank train`
//! calls. CPU time beside wall time tells a step that waits (system time: page faults of
//! freshly mapped buffers) from one that computes, and stays comparable when the machine is
//! shared; run it under `perf record -g` for the functions.

use std::time::Instant;

use burn::tensor::Device;
use sessionrank_data::default_data_dir;
use sessionrank_data::import::{DigineticaOptions, import_diginetica};
use sessionrank_train::pipeline::{
    FeatureOptions, Outputs, build_encoder, complete_config, train_on,
};
use sessionrank_train::presets::SAMPLED_NEGATIVES;
use sessionrank_train::{Preset, TrainConfig};

type Error = Box<dyn std::error::Error>;

/// User and system CPU seconds of this process so far (Linux; zeros elsewhere).
fn cpu_seconds() -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return (0.0, 0.0) };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11), ticks(12))
}

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let sessions: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20_000);
    let threads: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let allocator = args.next().unwrap_or_else(|| "keep".into());
    if allocator != "glibc" {
        sessionrank_train::memory::keep_freed_memory();
    }
    let options = DigineticaOptions { max_train_sessions: Some(sessions), ..Default::default() };
    let dataset = import_diginetica(&default_data_dir().join("diginetica"), &options)?.dataset;
    // The large-sessions preset whatever the slice's size: the headline configuration is
    // what is timed, not the smaller one a 20,000-session slice would get from its profile.
    let preset = Preset::LargeSessions.train_config();
    let encoder = build_encoder(&dataset, &FeatureOptions::default(), preset.model.max_len, 128)?;
    let config = TrainConfig {
        model: complete_config(preset.model.clone(), &encoder),
        max_epochs: 1,
        negatives: SAMPLED_NEGATIVES,
        valid_cases: 500,
        threads,
        ..preset
    };
    let (user0, sys0) = cpu_seconds();
    let start = Instant::now();
    let outcome = train_on(&dataset, &encoder, &config, &Device::flex(), &Outputs::default())?;
    let wall = start.elapsed().as_secs_f64();
    let (user1, sys1) = cpu_seconds();
    let steps = outcome.history.first().map(|h| h.steps).unwrap_or(0);
    println!(
        "{}",
        serde_json::json!({
            "sessions": dataset.train.len(),
            "threads": threads,
            "steps": steps,
            "wall_s": (wall * 10.0).round() / 10.0,
            "user_cpu_s": user1 - user0,
            "sys_cpu_s": sys1 - sys0,
            "cpu_s_per_step": ((user1 - user0 + sys1 - sys0) / steps.max(1) as f64 * 1e3).round() / 1e3,
            "targets_per_second": outcome.targets_per_second.round(),
            "allocator": allocator,
            "malloc_env": std::env::vars()
                .filter(|(k, _)| k.starts_with("MALLOC_"))
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>(),
        })
    );
    Ok(())
}
