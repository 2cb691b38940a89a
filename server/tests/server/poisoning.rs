//! Retraining with bot traffic in the stored events: the job's hygiene (on by default) drops
//! the sessions flooded with one item and all but a few copies of a replayed visit before it
//! splits and trains, says so in the job's metrics, and does nothing when switched off.
//! (What that does to rankings is measured on real data: `results/poisoning.json`.)

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};
use sessionrank_server::app;

use crate::common::*;

/// 20 bots clicking `i7` ten times among two other items, and 30 replays of one visit.
fn bot_events() -> Value {
    let mut events = Vec::new();
    let mut push = |session: String, item: String, t: i64| {
        events.push(json!({"session_id": session, "item_id": item, "type": "view", "timestamp": t}))
    };
    for b in 0..20 {
        for j in 0..12 {
            let item = if j % 6 == 0 { format!("i{}", (b + j) % 30) } else { "i7".into() };
            push(format!("bot{b}"), item, 1_700_100_000 + b * 1000 + j * 30);
        }
    }
    for r in 0..30 {
        for (j, item) in ["i1", "i2", "i7"].iter().enumerate() {
            push(format!("replay{r}"), item.to_string(), 1_700_200_000 + r * 1000 + j as i64 * 30);
        }
    }
    json!({"events": events})
}

async fn retrain_with(enabled: bool) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.retrain.hygiene.enabled = enabled;
    let router = app(open(config).await);
    assert_eq!(
        send_json(&router, "PUT", "/v1/items", &items_json(30)).await.status,
        StatusCode::OK
    );
    let r = send_json(&router, "POST", "/v1/events", &events_json(60, 30, 0)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = send_json(&router, "POST", "/v1/events", &bot_events()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = admin(&router, "POST", "/admin/retrain").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let id = r.json()["id"].as_str().expect("job id").to_string();
    let job = wait_for_job(&router, &id, Duration::from_secs(120)).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retraining_drops_bot_sessions_before_it_trains() {
    let job = retrain_with(true).await;
    let h = &job["metrics"]["hygiene"];
    assert_eq!(h["sessions_in"], 60 + 20 + 30, "{job}");
    assert_eq!(h["dropped_flooded"], 20, "{job}");
    assert_eq!(h["dropped_identical"], 30 - 4, "{job}");
    assert_eq!(h["sessions_kept"], 60 + 4, "{job}");
    assert_eq!(h["repeats_capped"], 0, "ordinary sessions click an item once: {job}");
    let split = |j: &Value| {
        ["train_sessions", "valid_cases", "test_cases"]
            .map(|k| j["metrics"][k].as_u64().unwrap_or(0))
    };
    let [train, ..] = split(&job);

    let off = retrain_with(false).await;
    let h = &off["metrics"]["hygiene"];
    assert_eq!((h["sessions_in"].clone(), h["sessions_kept"].clone()), (json!(110), json!(110)));
    let [train_off, ..] = split(&off);
    assert!(train < train_off, "{train} sessions trained with hygiene, {train_off} without");
}
