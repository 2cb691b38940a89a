//! Prometheus metrics, hand-written in the text exposition format (a handful of counters and
//! one histogram do not justify a metrics framework).
//!
//! A leaf: [`Metrics`] is a plain registry of counters that handlers and jobs update, and the
//! [`track`] middleware holds it alone (`from_fn_with_state(Arc<Metrics>, track)`), so nothing
//! here depends on the rest of the service.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use sessionrank_data::EventKind;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += v;
    }
}

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    events: [AtomicU64; EventKind::COUNT],
    event_batches: AtomicU64,
    replayed_batches: AtomicU64,
    items_upserted: AtomicU64,
    retrain_jobs: Mutex<BTreeMap<String, u64>>,
    /// (method, route) → latency histogram.
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
    /// (method, route, status) → count.
    responses: Mutex<BTreeMap<(String, String, u16), u64>>,
}

impl Metrics {
    pub fn events_stored(&self, kinds: impl Iterator<Item = EventKind>) {
        for k in kinds {
            self.events[k as usize].fetch_add(1, Ordering::Relaxed);
        }
        self.event_batches.fetch_add(1, Ordering::Relaxed);
    }

    pub fn batch_replayed(&self) {
        self.replayed_batches.fetch_add(1, Ordering::Relaxed);
    }

    pub fn items_upserted(&self, n: usize) {
        self.items_upserted.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn job_finished(&self, outcome: &str) {
        if let Ok(mut m) = self.retrain_jobs.lock() {
            *m.entry(outcome.to_string()).or_default() += 1;
        }
    }

    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        if let Ok(mut m) = self.latency.lock() {
            m.entry((method.to_string(), route.to_string())).or_default().observe(seconds);
        }
        if let Ok(mut m) = self.responses.lock() {
            *m.entry((method.to_string(), route.to_string(), status)).or_default() += 1;
        }
    }

    /// The exposition text. `model_version` (the live model) and `training` (the job running
    /// here and its progress) are owned elsewhere and passed in.
    pub fn render(&self, model_version: Option<&str>, training: Option<(&str, f64)>) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP sessionrank_events_ingested_total Events stored (acknowledged), by type."
        );
        let _ = writeln!(out, "# TYPE sessionrank_events_ingested_total counter");
        for (kind, name) in [
            (EventKind::View, "view"),
            (EventKind::AddToCart, "add_to_cart"),
            (EventKind::Purchase, "purchase"),
        ] {
            let _ = writeln!(
                out,
                "sessionrank_events_ingested_total{{type=\"{name}\"}} {}",
                self.events[kind as usize].load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(out, "# HELP sessionrank_event_batches_total Event batches stored.");
        let _ = writeln!(out, "# TYPE sessionrank_event_batches_total counter");
        let _ = writeln!(
            out,
            "sessionrank_event_batches_total {}",
            self.event_batches.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP sessionrank_event_batches_replayed_total Batches answered from an earlier request with the same Idempotency-Key."
        );
        let _ = writeln!(out, "# TYPE sessionrank_event_batches_replayed_total counter");
        let _ = writeln!(
            out,
            "sessionrank_event_batches_replayed_total {}",
            self.replayed_batches.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP sessionrank_items_upserted_total Catalog items inserted or updated."
        );
        let _ = writeln!(out, "# TYPE sessionrank_items_upserted_total counter");
        let _ = writeln!(
            out,
            "sessionrank_items_upserted_total {}",
            self.items_upserted.load(Ordering::Relaxed)
        );

        let _ = writeln!(out, "# HELP sessionrank_model_info The live model version (value 1).");
        let _ = writeln!(out, "# TYPE sessionrank_model_info gauge");
        if let Some(v) = model_version {
            let _ = writeln!(out, "sessionrank_model_info{{version=\"{}\"}} 1", escape(v));
        }
        let _ = writeln!(
            out,
            "# HELP sessionrank_training_running 1 while a retraining job runs here."
        );
        let _ = writeln!(out, "# TYPE sessionrank_training_running gauge");
        let _ = writeln!(out, "sessionrank_training_running {}", u8::from(training.is_some()));
        let _ = writeln!(
            out,
            "# HELP sessionrank_training_progress Progress (0..1) of the running retraining job."
        );
        let _ = writeln!(out, "# TYPE sessionrank_training_progress gauge");
        match training {
            Some((id, p)) => {
                let _ =
                    writeln!(out, "sessionrank_training_progress{{job=\"{}\"}} {p}", escape(id));
            }
            None => {
                let _ = writeln!(out, "sessionrank_training_progress 0");
            }
        }
        let _ = writeln!(
            out,
            "# HELP sessionrank_retrain_jobs_total Finished retraining jobs by outcome."
        );
        let _ = writeln!(out, "# TYPE sessionrank_retrain_jobs_total counter");
        if let Ok(m) = self.retrain_jobs.lock() {
            for (outcome, n) in m.iter() {
                let _ = writeln!(
                    out,
                    "sessionrank_retrain_jobs_total{{outcome=\"{}\"}} {n}",
                    escape(outcome)
                );
            }
        }

        let _ = writeln!(
            out,
            "# HELP sessionrank_http_requests_total HTTP responses by route and status."
        );
        let _ = writeln!(out, "# TYPE sessionrank_http_requests_total counter");
        if let Ok(m) = self.responses.lock() {
            for ((method, route, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "sessionrank_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP sessionrank_http_request_duration_seconds Request latency by route."
        );
        let _ = writeln!(out, "# TYPE sessionrank_http_request_duration_seconds histogram");
        let snapshot: Vec<((String, String), Histogram)> = match self.latency.lock() {
            Ok(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(_) => Vec::new(),
        };
        for ((method, route), h) in snapshot {
            let labels = format!("method=\"{method}\",route=\"{}\"", escape(&route));
            for (b, c) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "sessionrank_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {c}"
                );
            }
            let _ = writeln!(
                out,
                "sessionrank_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "sessionrank_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "sessionrank_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Middleware: latency and status per matched route (the route template, never the raw path,
/// so ids do not blow up the label set).
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "other".into());
    let response = next.run(req).await;
    metrics.observe(&method, &route, response.status().as_u16(), start.elapsed().as_secs_f64());
    response
}
