use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::{
    CandidateInput, ItemEncoder, ItemFeatures, ListScorer, ModelConfig, SessionEncoder,
    SessionInput,
};

/// The whole model: item encoder, session encoder, list scorer.
#[derive(Module, Debug)]
pub struct SessionRankModel {
    pub items: ItemEncoder,
    pub session: SessionEncoder,
    pub scorer: ListScorer,
    /// See [`ModelConfig::logit_scale`].
    pub logit_scale: f64,
}

impl SessionRankModel {
    pub(crate) fn new(config: &ModelConfig, device: &Device) -> Self {
        Self {
            items: ItemEncoder::new(config, device),
            session: SessionEncoder::new(config, device),
            scorer: ListScorer::new(config, device),
            logit_scale: config.logit_scale.unwrap_or(0.0),
        }
    }

    /// Item vectors for a feature table.
    ///
    /// # Shapes
    /// * returns `[n_rows, d]`
    pub fn item_vectors(&self, features: ItemFeatures) -> Tensor<2> {
        self.items.forward(features)
    }

    /// Logits over every row of `table` at every session position (training: the target of
    /// position `t` is the item of event `t + 1`). Scored against the same vectors the session
    /// reads (tied input/output embeddings), as SASRec does.
    ///
    /// # Shapes
    /// * `table`: `[n_rows, d]`; returns `[batch, len, n_rows]`
    pub fn forward_all_positions(&self, table: Tensor<2>, session: &SessionInput) -> Tensor<3> {
        let h = self.session.forward(table.clone(), session); // [b, l, d]
        let [b, l, d] = h.dims();
        let n = table.dims()[0];
        self.logits(h.reshape([b * l, d]), table).reshape([b, l, n])
    }

    /// Full-catalog scores after each session's last event.
    ///
    /// # Shapes
    /// * returns `[batch, n_rows]`
    pub fn forward_full(&self, table: Tensor<2>, session: &SessionInput) -> Tensor<2> {
        let h = self.session.forward_last(table.clone(), session); // [b, d]
        self.logits(h, table)
    }

    /// Logits of session states against item vectors: dot products, or scaled cosines when
    /// `logit_scale > 0`.
    ///
    /// # Shapes
    /// * `h`: `[m, d]`, `table`: `[n, d]`; returns `[m, n]`
    pub fn logits(&self, h: Tensor<2>, table: Tensor<2>) -> Tensor<2> {
        if self.logit_scale > 0.0 {
            l2_normalize(h).matmul(l2_normalize(table).transpose()) * self.logit_scale
        } else {
            h.matmul(table.transpose())
        }
    }

    /// Candidate-list scores (the product's re-rank call): [`Self::session_state`] then
    /// [`Self::score_candidates`].
    ///
    /// # Shapes
    /// * returns `[batch, n_candidates]`
    pub fn forward_rerank(
        &self,
        table: Tensor<2>,
        session: &SessionInput,
        candidates: &CandidateInput,
    ) -> Tensor<2> {
        let h = self.session_state(table.clone(), session);
        self.score_candidates(h, table, candidates)
    }

    /// The session's state after its last event, ready to score candidates with: the half of
    /// a re-rank that depends on the session only, so a caller can keep it while the session
    /// does not change (the browser re-ranks a new page without a new click).
    ///
    /// # Shapes
    /// * `table`: `[n_rows, d]`; returns `[batch, d]`
    pub fn session_state(&self, table: Tensor<2>, session: &SessionInput) -> Tensor<2> {
        self.scale_state(self.session.forward_last(table, session))
    }

    /// The session encoder's output as [`Self::score_candidates`] takes it: unchanged for dot
    /// products, a scaled unit vector for cosine logits (the geometry of `logits`). For a
    /// state computed elsewhere ([`crate::FusedSessionEncoder`]).
    ///
    /// # Shapes
    /// * `h`: `[batch, d]`; returns `[batch, d]`
    pub fn scale_state(&self, h: Tensor<2>) -> Tensor<2> {
        if self.logit_scale > 0.0 { l2_normalize(h) * self.logit_scale } else { h }
    }

    /// Candidate scores for session states from [`Self::session_state`]; `table` holds the
    /// candidates' rows (raw item vectors, as for `session_state`).
    ///
    /// # Shapes
    /// * `h`: `[batch, d]`, `table`: `[n_rows, d]`; returns `[batch, n_candidates]`
    pub fn score_candidates(
        &self,
        h: Tensor<2>,
        table: Tensor<2>,
        candidates: &CandidateInput,
    ) -> Tensor<2> {
        let table = if self.logit_scale > 0.0 { l2_normalize(table) } else { table };
        self.scorer.forward(h, table, candidates)
    }
}

/// Rows scaled to unit L2 norm (a small epsilon keeps the padding row finite).
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powf_scalar(2.0).sum_dim(1).sqrt().clamp_min(1e-6); // [n, 1]
    x / norm
}
