//! The router scenarios and the SIGKILL test on PostgreSQL. They run when
//! `SESSIONRANK_TEST_POSTGRES_URL` names a database (`scripts/postgres-test-setup.sh` starts
//! one and prints the URL); otherwise each test says that it skipped, or fails under `CI=true`
//! (`skip_unless_required`). Every test works in a schema of its own, so they run in parallel.

use sessionrank_server::AppState;
use sessionrank_server::store::Store;

use crate::common::*;
use crate::{durability, router};

const ENV: &str = "SESSIONRANK_TEST_POSTGRES_URL";

/// A URL whose connections use a fresh schema, or `None` (skip) without the variable.
/// An unreachable server fails the test.
pub(crate) async fn fresh_url(test: &str) -> Option<String> {
    let Some(base) = std::env::var(ENV).ok().filter(|u| !u.is_empty()) else {
        skip_unless_required(
            &format!("{ENV} is not set (scripts/postgres-test-setup.sh prints one)"),
            false,
        );
        return None;
    };
    let schema = format!("t_{}_{:x}", test, rand_suffix());
    let admin = Store::open(&base).await.expect("PostgreSQL is reachable");
    admin.execute_raw(&format!("CREATE SCHEMA {schema}")).await.expect("create schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options%5Bsearch_path%5D={schema}"))
}

fn rand_suffix() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ (std::process::id() as u64) << 32
}

pub(crate) async fn pg_state(
    test: &str,
    configure: impl FnOnce(&mut sessionrank_server::Config),
) -> Option<(tempfile::TempDir, AppState)> {
    let url = fresh_url(test).await?;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.database_url = url;
    configure(&mut config);
    Some((dir, open(config).await))
}

#[tokio::test]
async fn events_are_stored_once_per_idempotency_key_postgres() {
    if let Some((_dir, state)) = pg_state("idem", |_| {}).await {
        router::events_are_stored_once_per_idempotency_key(state).await;
    }
}

#[tokio::test]
async fn bad_events_are_rejected_naming_the_field_and_store_nothing_postgres() {
    if let Some((_dir, state)) = pg_state("badev", |_| {}).await {
        router::bad_events_are_rejected_naming_the_field_and_store_nothing(state).await;
    }
}

#[tokio::test]
async fn items_are_validated_and_upserted_postgres() {
    if let Some((_dir, state)) = pg_state("items", |_| {}).await {
        router::items_are_validated_and_upserted(state).await;
    }
}

#[tokio::test]
async fn candidates_are_the_most_interacted_items_first_postgres() {
    if let Some((_dir, state)) = pg_state("cands", |_| {}).await {
        router::candidates_are_the_most_interacted_items_first(state).await;
    }
}

#[tokio::test]
async fn candidates_carry_the_live_models_vectors_postgres() {
    if let Some((_dir, state)) = pg_state("vecs", |_| {}).await {
        router::candidates_carry_the_live_models_vectors(state).await;
    }
}

#[tokio::test]
async fn models_are_published_cached_activated_and_pruned_postgres() {
    if let Some((_dir, state)) = pg_state("models", |c| c.keep_versions = 2).await {
        router::models_are_published_cached_activated_and_pruned(state).await;
    }
}

#[tokio::test]
async fn failed_retraining_leaves_the_live_model_postgres() {
    if let Some((_dir, state)) = pg_state("fail", |c| c.retrain.fail_after_epoch = Some(1)).await {
        router::failed_retraining_leaves_the_live_model(state).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_ingest_loses_no_acknowledged_event_postgres() {
    if let Some(url) = fresh_url("kill").await {
        durability::kill_during_ingest_loses_no_acknowledged_event(Some(url)).await;
    }
}

#[tokio::test]
async fn writes_need_a_key_with_the_scope_and_refused_ones_store_nothing_postgres() {
    if let Some((_dir, state)) = pg_state("auth", crate::write_auth::scoped_keys).await {
        crate::write_auth::writes_need_a_key_with_the_scope_and_refused_ones_store_nothing(state)
            .await;
    }
}

#[tokio::test]
async fn concurrent_retries_of_one_key_store_once_postgres() {
    if let Some((_dir, state)) = pg_state("race", |_| {}).await {
        crate::review_fixes::concurrent_retries_of_one_key_store_once(state).await;
    }
}

#[tokio::test]
async fn a_panicking_job_frees_the_retrain_slot_postgres() {
    if let Some((_dir, state)) = pg_state("panic", crate::review_fixes::panics_after_loading).await
    {
        crate::review_fixes::a_panicking_job_frees_the_retrain_slot(state).await;
    }
}

/// Acknowledged writes are flushed even where the database's default says otherwise.
#[tokio::test]
async fn connections_commit_synchronously_whatever_the_default() {
    let Some(url) = fresh_url("sync").await else { return };
    let url = format!("{url}&options%5Bsynchronous_commit%5D=off");
    let store = Store::open(&url).await.expect("opens");
    let setting =
        store.query_text("SELECT current_setting('synchronous_commit')").await.expect("query");
    assert_eq!(setting.as_deref(), Some("on"));
}

#[tokio::test]
async fn withdrawn_items_leave_the_candidate_pages_postgres() {
    if let Some((_dir, state)) = pg_state("withdraw", |_| {}).await {
        crate::lifecycle::withdrawn_items_leave_the_candidate_pages(state).await;
    }
}

#[tokio::test]
async fn erasure_removes_the_sessions_events_postgres() {
    if let Some((_dir, state)) = pg_state("erase", |_| {}).await {
        crate::lifecycle::erasure_removes_the_sessions_events(state).await;
    }
}

#[tokio::test]
async fn retention_deletes_old_events_postgres() {
    if let Some((_dir, state)) = pg_state("retention", crate::lifecycle::thirty_days).await {
        crate::lifecycle::retention_deletes_old_events(state).await;
    }
}

#[tokio::test]
async fn item_counts_follow_ingest_erasure_and_retention_postgres() {
    if let Some((_dir, state)) = pg_state("counts", |_| {}).await {
        crate::store_work::item_counts_follow_ingest_erasure_and_retention(state).await;
    }
}

#[tokio::test]
async fn candidate_pages_are_cached_and_built_once_postgres() {
    if let Some((_dir, state)) = pg_state("pages", |_| {}).await {
        crate::store_work::candidate_pages_are_cached_and_built_once(state).await;
    }
}

#[tokio::test]
async fn retraining_reads_a_bounded_window_in_pages_postgres() {
    if let Some((_dir, state)) = pg_state("window", |_| {}).await {
        crate::store_work::retraining_reads_a_bounded_window_in_pages(state.store.clone()).await;
    }
}

#[tokio::test]
async fn uploads_are_verified_before_anything_is_stored_postgres() {
    if let Some((_dir, state)) = pg_state("upload", |_| {}).await {
        crate::publish::uploads_are_verified_before_anything_is_stored(state).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_instance_serves_every_version_loading_each_once_postgres() {
    let Some((_dir, first)) = pg_state("instances", |_| {}).await else { return };
    let other = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(other.path());
    config.database_url = first.config.database_url.clone();
    let second = open(config).await;
    crate::publish::every_instance_serves_every_version_loading_each_once(first, second).await;
}

/// Issue 18: three `sessionrank serve` processes on one PostgreSQL (see `scale_out`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_on_one_database_postgres() {
    if let Some(url) = fresh_url("scale").await {
        crate::scale_out::three_instances_on_one_database(url).await;
    }
}
