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
    // Guard against absurd sizes in a downloaded manifest (memory exhaustion).
    if c.d_model > 4096
        || c.n_layers > 64
        || c.n_items > 50_000_000
        || c.vocab_size > 10_000_000
        || c.max_len > 4096
        || c.max_candidates > 100_000
    {
        return bad("model dimensions are out of range");
    }
    Ok(())
}
