use burn::module::Module;
use burn::nn::transformer::{
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput,
};
use burn::nn::{Embedding, EmbeddingConfig, Initializer};
use burn::tensor::module::embedding;
use burn::tensor::{Device, Tensor};

use crate::{CandidateInput, ModelConfig};

/// Scores a candidate list for a session: the dot product of the session state with each
/// candidate's vector, plus a learned bias for the candidate's upstream rank (the position
/// bias PRM feeds its re-ranker), plus — when `list_context` is on — a self-attention layer
/// over the list so a candidate's vector can depend on what else is shown.
#[derive(Module, Debug)]
pub struct ListScorer {
    pub rank_bias: Embedding,
    pub list: Option<TransformerEncoder>,
}

impl ListScorer {
    pub fn new(config: &ModelConfig, device: &Device) -> Self {
        Self {
            // Zero start: an untrained rank bias leaves the model's order untouched.
            rank_bias: EmbeddingConfig::new(config.max_candidates, 1)
                .with_initializer(Initializer::Zeros)
                .init(device),
            list: config.list_context.then(|| {
                TransformerEncoderConfig::new(config.d_model, config.d_ff, config.n_heads, 1)
                    .with_dropout(config.dropout)
                    .with_norm_first(true)
                    .init(device)
            }),
        }
    }

    /// # Shapes
    /// * `session`: `[batch, d]`, `table`: `[n_rows, d]`
    /// * returns `[batch, n_candidates]`
    pub fn forward(
        &self,
        session: Tensor<2>,
        table: Tensor<2>,
        candidates: &CandidateInput,
    ) -> Tensor<2> {
        let [batch, n] = candidates.items.dims();
        let mut c = embedding(table, candidates.items.clone()); // [b, n, d]
        if let Some(list) = &self.list {
            c = c.clone() + list.forward(TransformerEncoderInput::new(c));
        }
        let d = session.dims()[1];
        let dot = c.matmul(session.reshape([batch, d, 1])).reshape([batch, n]); // [b, n]
        let bias = self.rank_bias.forward(candidates.ranks.clone()).reshape([batch, n]);
        dot + bias
    }
}
