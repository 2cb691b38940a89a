//! One call on an engine without blocking the page: the asynchronous readback (the only one
//! WebGPU allows) and a whole call, prepare → readback → finish. Used by the `Reranker`'s
//! engines and by the WebGPU warm-up race alike.

use sessionrank_core::reranker::PendingRanking;
use sessionrank_core::{CoreError, Prepared, Ranking, Reranker as Engine};

/// Scores and item table, read back without blocking (the only readback WebGPU allows).
pub async fn read_back(p: &PendingRanking) -> Result<(Vec<f32>, Vec<f32>), CoreError> {
    p.read_async().await
}

/// One whole call on `engine` (prepare, readback, finish): what the warm-up times.
pub async fn score(
    engine: &Engine,
    session: &[sessionrank_core::SessionEvent],
    candidates: &[sessionrank_core::Candidate],
) -> Result<Ranking, CoreError> {
    match engine.prepare(session, candidates)? {
        Prepared::Upstream(r) => Ok(r),
        Prepared::Pending(p) => {
            let (scores, table) = read_back(&p).await?;
            p.finish(&scores, &table, engine.model_dim())
        }
    }
}
