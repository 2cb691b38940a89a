//! Checks on what comes from outside: a candidate list from a storefront, an item vector from
//! JS, a model config from a downloaded manifest. Each error names the offending field.

use std::collections::HashMap;

use crate::ranking::Candidate;
use crate::{CoreError, Result};

/// Longest candidate list a call accepts: a storefront shows ~100; more is a client bug.
pub const MAX_CANDIDATES: usize = 1000;

/// Reject lists a storefront should never send: empty, oversized, blank or duplicate ids.
pub fn validate_candidates(candidates: &[Candidate]) -> Result<()> {
    if candidates.is_empty() {
        return Err(CoreError::input("candidates", "the candidate list is empty"));
    }
    if candidates.len() > MAX_CANDIDATES {
        return Err(CoreError::input(
            "candidates",
            format!("{} candidates, at most {MAX_CANDIDATES} are accepted", candidates.len()),
        ));
    }
    let mut seen = HashMap::with_capacity(candidates.len());
    for (i, c) in candidates.iter().enumerate() {
        if c.item_id.trim().is_empty() {
            return Err(CoreError::input(format!("candidates[{i}].item_id"), "empty item id"));
        }
        if let Some(first) = seen.insert(c.item_id.as_str(), i) {
            return Err(CoreError::input(
                format!("candidates[{i}].item_id"),
                format!("duplicate of candidates[{first}] ({})", c.item_id),
            ));
        }
    }
    Ok(())
}

/// A given item vector must have the model's width (`dim`) and finite numbers; `field` names
/// it in the error (made only then). The browser package checks an observed event's vector
/// with this too, before the event enters the session.
pub fn validate_vector(v: &[f32], dim: usize, field: impl Fn() -> String) -> Result<()> {
    if v.len() != dim {
        return Err(CoreError::input(
            field(),
            format!("expected {dim} numbers (the model's d_model), got {}", v.len()),
        ));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(CoreError::input(format!("{}[{i}]", field()), "must be a finite number"));
    }
    Ok(())
}

/// Reject configs that cannot build a model (they come from downloaded manifests).
pub fn validate_config(c: &sessionrank_model::ModelConfig) -> Result<()> {
    let bad = |m: &str| Err(CoreError::InvalidConfig(m.to_string()));
    if c.d_model == 0 || c.n_heads == 0 || !c.d_model.is_multiple_of(c.n_heads) {
        return bad("d_model must be a positive multiple of n_heads");
    }
    if c.max_len == 0 || c.max_candidates == 0 || c.d_ff == 0 {
        return bad("max_len, max_candidates and d_ff must be positive");
    }
    if !c.use_item_ids && !c.use_content {
        return bad("the model needs item ids or content");
    }
    if !(0.0..1.0).contains(&c.dropout) {
        return bad("dropout must be in [0, 1)");
    }
    // The feature encoder emits price ids up to `MAX_PRICE_LEVEL + 1` (0 = unknown).
    if c.use_content && c.n_price_levels < usize::from(crate::features::MAX_PRICE_LEVEL) + 2 {
        return bad("n_price_levels is smaller than the price levels the features use");
    }
    // Guard against absurd sizes in a downloaded manifest (memory exhaustion).
    if c.d_model > 4096
        || c.n_layers > 64
        || c.n_items > 50_000_000
        || c.vocab_size > 10_000_000
        || c.max_len > 4096
        || c.max_candidates > 100_000
        || c.d_ff > 65_536
        || c.n_categories > 10_000_000
        || c.n_price_levels > 4096
        || c.max_tokens > 4096
    {
        return bad("model dimensions are out of range");
    }
    Ok(())
}

/// Reject weights too small for `c` before a model of that size is allocated: a manifest is
/// data from outside, and one that claims 50 million items (or a `d_ff` of 65,536) would
/// otherwise make `init` allocate gigabytes before the weights fail to load. The count is a
/// lower bound of the model's parameters (its tables and matrices; biases and norms left
/// out), and every parameter takes at least 2 bytes in a burnpack file (4 as f32).
pub fn validate_weights_size(c: &sessionrank_model::ModelConfig, weights_len: usize) -> Result<()> {
    use sessionrank_model::{EVENT_KINDS, TIME_GAP_BUCKETS};
    let n = |x: usize| x as u128;
    let d = n(c.d_model);
    let mut params = 0u128;
    if c.use_item_ids {
        params += (n(c.n_items) + 1) * d;
    }
    if c.use_content {
        params += (n(c.vocab_size.max(1)) + n(c.n_categories) + 1 + n(c.n_price_levels) + d) * d;
    }
    let layer = 4 * d * d + 2 * d * n(c.d_ff);
    params += (n(c.max_len) + n(EVENT_KINDS) + n(TIME_GAP_BUCKETS)) * d + n(c.n_layers) * layer;
    params += n(c.max_candidates);
    if c.list_context {
        params += layer;
    }
    if params.saturating_mul(2) > weights_len as u128 {
        return Err(CoreError::InvalidFile {
            file: crate::bundle::WEIGHTS.into(),
            message: format!(
                "{weights_len} bytes cannot hold the {params} or more parameters the config \
                 describes"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use burn::tensor::Device;
    use sessionrank_model::ModelConfig;

    use super::{validate_config, validate_weights_size};
    use crate::CoreError;

    /// The model's burnpack bytes (as `weights::weights_bytes`, without importing it here).
    fn weights_bytes(model: sessionrank_model::SessionRankModel) -> Vec<u8> {
        use burn::module::Module;
        model.into_record().into_bytes().map(|b| b.to_vec()).unwrap_or_default()
    }

    /// The bound must never refuse a real model's weights: every shape a bundle may have.
    #[test]
    fn real_weights_pass_the_size_check() -> crate::Result<()> {
        let base = ModelConfig::new()
            .with_n_items(7)
            .with_vocab_size(5)
            .with_n_categories(3)
            .with_d_model(8)
            .with_n_heads(2)
            .with_d_ff(16)
            .with_max_len(6)
            .with_max_candidates(10);
        let shapes = [
            base.clone(),
            base.clone().with_list_context(true).with_n_layers(3),
            base.clone().with_use_content(false),
            base.clone().with_use_item_ids(false),
            base.with_n_items(0).with_vocab_size(1),
        ];
        for c in shapes {
            validate_config(&c)?;
            let bytes = weights_bytes(c.init(&Device::flex()));
            assert!(!bytes.is_empty());
            validate_weights_size(&c, bytes.len())?;
        }
        Ok(())
    }

    /// A manifest within the dimension limits but with a few bytes of weights (fuzzing:
    /// `init` allocated the claimed model, gigabytes, before loading failed).
    #[test]
    fn weights_too_small_for_the_config_are_refused() {
        let huge = ModelConfig::new().with_n_items(50_000_000).with_d_model(4096).with_n_heads(8);
        assert!(validate_config(&huge).is_ok(), "within the dimension limits");
        let r = validate_weights_size(&huge, 4096);
        assert!(matches!(r, Err(CoreError::InvalidFile { .. })), "{r:?}");
    }
}
