use burn::tensor::{Int, Tensor};

/// Content of a table of items: one row per item, row 0 being padding.
///
/// # Shapes
/// * `ids`: `[n]` — id-embedding index (0 = unknown item)
/// * `tokens`: `[n, max_tokens]` — text token ids, 0 = padding
/// * `categories`, `prices`: `[n]` — 0 = unknown
#[derive(Debug, Clone)]
pub struct ItemFeatures {
    pub ids: Tensor<1, Int>,
    pub tokens: Tensor<2, Int>,
    pub categories: Tensor<1, Int>,
    pub prices: Tensor<1, Int>,
}

/// A batch of sessions, right-padded.
///
/// # Shapes
/// * `items`: `[batch, len]` — rows of the item table (0 = padding)
/// * `kinds`: `[batch, len]` — 1 + event kind (0 = padding)
/// * `gaps`: `[batch, len]` — time-gap bucket (see `time_gap_bucket`)
/// * `last`: `[batch]` — index of each session's last real event
#[derive(Debug, Clone)]
pub struct SessionInput {
    pub items: Tensor<2, Int>,
    pub kinds: Tensor<2, Int>,
    pub gaps: Tensor<2, Int>,
    pub last: Tensor<1, Int>,
}

/// Candidate lists to score, in upstream order.
///
/// # Shapes
/// * `items`: `[batch, n_candidates]` — rows of the item table
/// * `ranks`: `[batch, n_candidates]` — upstream position (0 = shown first), capped at
///   `max_candidates - 1`
#[derive(Debug, Clone)]
pub struct CandidateInput {
    pub items: Tensor<2, Int>,
    pub ranks: Tensor<2, Int>,
}
