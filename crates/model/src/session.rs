use burn::module::Module;
use burn::nn::attention::generate_autoregressive_mask;
use burn::nn::transformer::{
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput,
};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig,
};
use burn::tensor::module::embedding;
use burn::tensor::{Device, Int, Tensor};

use crate::{EVENT_KINDS, ModelConfig, SessionInput, TIME_GAP_BUCKETS};

/// A causal Transformer over the session's events. Each event is its item's vector plus
/// learned position, event-type and time-gap embeddings; position `t` sees events `0..=t`
/// only, so one forward pass trains a prediction at every position of the session.
#[derive(Module, Debug)]
pub struct SessionEncoder {
    pub positions: Embedding,
    pub kinds: Embedding,
    pub gaps: Embedding,
    pub transformer: TransformerEncoder,
    pub dropout: Dropout,
    pub norm: LayerNorm,
}

impl SessionEncoder {
    pub fn new(config: &ModelConfig, device: &Device) -> Self {
        let d = config.d_model;
        let init = Initializer::Normal { mean: 0.0, std: 0.02 };
        let emb = |n: usize| EmbeddingConfig::new(n, d).with_initializer(init.clone()).init(device);
        Self {
            positions: emb(config.max_len),
            kinds: emb(EVENT_KINDS),
            gaps: emb(TIME_GAP_BUCKETS),
            transformer: TransformerEncoderConfig::new(
                d,
                config.d_ff,
                config.n_heads,
                config.n_layers,
            )
            .with_dropout(config.dropout)
            // Pre-norm trains stably without a long warm-up at these small sizes.
            .with_norm_first(true)
            .init(device),
            dropout: DropoutConfig::new(config.dropout).init(),
            norm: LayerNormConfig::new(d).init(device),
        }
    }

    /// Hidden state after every event.
    ///
    /// # Shapes
    /// * `table`: `[n_rows, d]` item vectors (row 0 = padding)
    /// * returns `[batch, len, d]`
    pub fn forward(&self, table: Tensor<2>, input: &SessionInput) -> Tensor<3> {
        let [batch, len] = input.items.dims();
        let device = input.items.device();
        let x = embedding(table, input.items.clone()); // [b, l, d]
        let pos = Tensor::<1, Int>::arange(0..len as i64, &device)
            .unsqueeze_dim::<2>(0)
            .repeat_dim(0, batch); // [b, l]
        let x = x
            + self.positions.forward(pos)
            + self.kinds.forward(input.kinds.clone())
            + self.gaps.forward(input.gaps.clone());
        let x = self.dropout.forward(x);
        // Right padding + a causal mask: a real position never attends to a later (padded)
        // one, and no row is fully masked, so no padding mask is needed and no NaN can appear.
        let mask = generate_autoregressive_mask(batch, len, &device);
        let h = self.transformer.forward(TransformerEncoderInput::new(x).mask_attn(mask));
        self.norm.forward(h)
    }

    /// Hidden state after each session's last real event.
    ///
    /// # Shapes
    /// * returns `[batch, d]`
    pub fn forward_last(&self, table: Tensor<2>, input: &SessionInput) -> Tensor<2> {
        let h = self.forward(table, input); // [b, l, d]
        gather_rows(h, input.last.clone())
    }
}

/// `h[b, last[b], :]` for every `b`.
///
/// # Shapes
/// * `h`: `[batch, len, d]`, `last`: `[batch]` → `[batch, d]`
pub fn gather_rows(h: Tensor<3>, last: Tensor<1, Int>) -> Tensor<2> {
    let [batch, _len, d] = h.dims();
    let idx = last.reshape([batch, 1, 1]).repeat_dim(2, d); // [b, 1, d]
    h.gather(1, idx).reshape([batch, d])
}
