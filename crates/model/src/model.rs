use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::{CandidateInput, ItemEncoder, ItemFeatures, ListScorer, ModelConfig, SessionEncoder, SessionInput};

/// The whole model: item encoder, session encoder, list scorer.
#[derive(Module, Debug)]
pub struct SessionRankModel {
    pub items: ItemEncoder,
    pub session: SessionEncoder,
    pub scorer: ListScorer,
}

impl SessionRankModel {
    pub(crate) fn new(config: &ModelConfig, device: &Device) -> Self {
        Self {
            items: ItemEncoder::new(config, device),
            session: SessionEncoder::new(config, device),
            scorer: ListScorer::new(config, device),
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
        h.reshape([b * l, d]).matmul(table.transpose()).reshape([b, l, n])
    }

    /// Full-catalog scores after each session's last event.
    ///
    /// # Shapes
    /// * returns `[batch, n_rows]`
    pub fn forward_full(&self, table: Tensor<2>, session: &SessionInput) -> Tensor<2> {
        let h = self.session.forward_last(table.clone(), session); // [b, d]
        h.matmul(table.transpose())
    }

    /// Candidate-list scores (the product's re-rank call).
    ///
    /// # Shapes
    /// * returns `[batch, n_candidates]`
    pub fn forward_rerank(&self, table: Tensor<2>, session: &SessionInput, candidates: &CandidateInput) -> Tensor<2> {
        let h = self.session.forward_last(table.clone(), session);
        self.scorer.forward(h, table, candidates)
    }
}
