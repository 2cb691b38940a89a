//! The list scorer's inference on the CPU as plain loops ([`FusedScorer`]), the companion of
//! [`crate::FusedSessionEncoder`].
//!
//! Why: scoring 100 candidates is 100 dot products of width 64 plus a bias, yet through
//! burn's modules it is a gather, an L2 normalisation (five operations), a matmul, an
//! embedding lookup and an add, each with its own allocation and dispatch, and a readback.
//! In the browser those operations also mean a large part of burn's code is compiled lazily
//! on a shopper's first click. Here the session state, the item table and the scores stay
//! plain `f32` slices on the host. It computes what [`SessionRankModel::score_candidates`]
//! and [`SessionRankModel::scale_state`] do (checked by `crates/model/src/tests.rs` and the
//! golden scores of `crates/core/tests/parity.rs`); a model with a list-context layer keeps
//! burn's path.

use crate::SessionRankModel;
use crate::fused::{Unfusable, floats};

/// Row norms below this are clamped, as [`crate::l2_normalize`] does (the padding row).
const MIN_NORM: f32 = 1e-6;

/// [`SessionRankModel`]'s state scaling and candidate scoring, on host slices.
#[derive(Debug, Clone)]
pub struct FusedScorer {
    /// The learned bias of each upstream rank (`[max_candidates]`).
    rank_bias: Vec<f32>,
    /// Cosine logits times this when `> 0`, plain dot products otherwise.
    logit_scale: f32,
}

impl FusedScorer {
    /// Copy the scorer's weights (read synchronously: a CPU device). A list-context layer is
    /// not implemented here: an error, and the caller keeps burn's path.
    pub fn new(model: &SessionRankModel) -> Result<Self, Unfusable> {
        if model.scorer.list.is_some() {
            return Err(Unfusable("the list-context layer runs on burn's modules".into()));
        }
        let rank_bias = floats(model.scorer.rank_bias.weight.val())?;
        if rank_bias.is_empty() {
            return Err(Unfusable("no rank bias rows".into()));
        }
        Ok(Self { rank_bias, logit_scale: model.logit_scale as f32 })
    }

    /// The session encoder's output as [`FusedScorer::score`] takes it, in place: unchanged
    /// for dot products, a scaled unit vector for cosine logits
    /// ([`SessionRankModel::scale_state`]).
    pub fn scale_state(&self, h: &mut [f32]) {
        if self.logit_scale > 0.0 {
            let norm = norm(h);
            for x in h {
                *x = *x / norm * self.logit_scale;
            }
        }
    }

    /// Scores of the candidates at `rows` of `table` (`[n_rows, d]`, raw item vectors), in
    /// upstream order, for a state from [`FusedScorer::scale_state`]: written to `out`.
    /// `None` when a row is outside the table or `h` is not a row's width.
    pub fn score(
        &self,
        h: &[f32],
        table: &[f32],
        rows: &[usize],
        out: &mut Vec<f32>,
    ) -> Option<()> {
        let d = h.len();
        let max_rank = self.rank_bias.len() - 1;
        out.clear();
        out.reserve(rows.len());
        for (rank, &row) in rows.iter().enumerate() {
            let v = table.get(row * d..(row + 1) * d)?;
            let dot = if self.logit_scale > 0.0 {
                let n = norm(v);
                v.iter().zip(h).map(|(a, b)| a / n * b).sum::<f32>()
            } else {
                v.iter().zip(h).map(|(a, b)| a * b).sum::<f32>()
            };
            out.push(dot + self.rank_bias[rank.min(max_rank)]);
        }
        Some(())
    }
}

/// The L2 norm, clamped below as [`crate::l2_normalize`] does.
fn norm(x: &[f32]) -> f32 {
    x.iter().map(|v| v * v).sum::<f32>().sqrt().max(MIN_NORM)
}
