//! A re-rank's two bulk conversions, each in one call to `js/bulk.js`: the candidate list in
//! (ids as one JSON string, vectors as one `Float32Array`) and the ranking out (its strings
//! back to back in one JS string, its numbers in typed arrays).
//!
//! Why: through wasm-bindgen property by property a page of 100 candidates cost ~8 boundary
//! crossings each on the way in, and the result — written as JSON and read by `JSON.parse` —
//! was the largest part of a click (BENCHMARKS.md, issue 19). The shapes JavaScript sees are
//! unchanged; anything the fast path does not take (content, an odd vector or id) goes
//! through [`crate::shapes::candidates`], which names the exact field at fault.

use serde::Serialize;
use sessionrank_core::explain::describe;
use sessionrank_core::{Candidate, Effects, Ranking};
use wasm_bindgen::prelude::*;

use crate::error::{Error, ErrorCode, Result};
use crate::js::property;
use crate::shapes::{HiddenOut, Id, Timings};

#[wasm_bindgen(module = "/js/bulk.js")]
extern "C" {
    /// `{ids, vectors, flags}` or `null` (not the common shape: take the slow path).
    #[wasm_bindgen(js_name = packCandidates, catch)]
    fn pack_candidates(list: &JsValue, dim: u32, max: u32)
    -> std::result::Result<JsValue, JsValue>;

    #[wasm_bindgen(js_name = buildRanking, catch)]
    fn build_ranking(
        text: &str,
        ends: &[u32],
        ranks: &[u32],
        because: &[u8],
        rest: &str,
    ) -> std::result::Result<JsValue, JsValue>;
}

/// Bit 0 of a candidate's flag: it came with a vector; bit 1: `available: false`.
const HAS_VECTOR: u8 = 1;
const UNAVAILABLE: u8 = 2;

/// The candidates of the common shape, or `None` for the element-by-element path. Ids are
/// checked here exactly as there (the same [`Id`] rules and field names); vectors are checked
/// by the engine, which knows `d_model`.
pub fn candidates(value: &JsValue, dim: usize, max: usize) -> Result<Option<Vec<Candidate>>> {
    let packed = match pack_candidates(value, dim as u32, max as u32) {
        Ok(p) if p.is_object() => p,
        // Not the common shape, or a getter threw: the slow path reads it and says what.
        _ => return Ok(None),
    };
    let Some(ids) = property(&packed, "ids").as_string() else { return Ok(None) };
    // A lone surrogate in an id is escaped by JSON.stringify and refused here: slow path.
    let Ok(ids) = serde_json::from_str::<Vec<Id>>(&ids) else { return Ok(None) };
    let flags = property(&packed, "flags").unchecked_into::<js_sys::Uint8Array>().to_vec();
    let vectors = property(&packed, "vectors").unchecked_into::<js_sys::Float32Array>().to_vec();
    if flags.len() != ids.len() || vectors.len() != ids.len() * dim {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(ids.len());
    for (i, (id, flag)) in ids.into_iter().zip(flags).enumerate() {
        let item_id = id.into_string(&format!("candidates[{i}].itemId"))?;
        let vector = (flag & HAS_VECTOR != 0).then(|| vectors[i * dim..(i + 1) * dim].to_vec());
        out.push(Candidate { item_id, content: None, vector, available: flag & UNAVAILABLE == 0 });
    }
    Ok(Some(out))
}

/// The small fields of a ranking, as JSON (the items' strings and numbers go separately).
#[derive(Serialize)]
struct Rest<'a> {
    /// Per item in order, or `None` when no rule touched any item (each is then `{}`).
    effects: Option<Vec<&'a Effects>>,
    personalised: bool,
    reason: &'a Option<String>,
    hidden: Vec<HiddenOut>,
    backend: &'static str,
    millis: f64,
    timings: Timings,
}

/// `rerank`'s result as a JS object: `{items, personalised, reason, hidden, backend, millis,
/// timings}`, each item `{itemId, score, upstreamRank, because, effects, explanation}`.
pub fn ranking(
    r: &Ranking,
    backend: &'static str,
    millis: f64,
    timings: Timings,
) -> Result<JsValue> {
    let failed =
        |e: String| Error::new(ErrorCode::Device, format!("could not build the result: {e}"));
    let n = r.items.len();
    let mut text: Vec<u8> = Vec::with_capacity(n * 64);
    let mut ends: Vec<u32> = Vec::with_capacity(n * 7);
    let mut units: usize = 0;
    // One piece: its bytes appended, its end in UTF-16 units (what `String.slice` counts).
    let mut push = |text: &mut Vec<u8>, from: usize| {
        let piece = &text[from..];
        units += if piece.is_ascii() {
            piece.len()
        } else {
            String::from_utf8_lossy(piece).encode_utf16().count()
        };
        ends.push(units as u32);
    };
    let number = |text: &mut Vec<u8>, x: f32| {
        // serde_json's f32 form (the shortest decimal that reads back as the same f32).
        let _ = serde_json::to_writer(&mut *text, &x);
    };
    let mut ranks = Vec::with_capacity(n);
    let mut because = Vec::with_capacity(n);
    let mut ids: Vec<&str> = Vec::with_capacity(2);
    for item in &r.items {
        let at = text.len();
        text.extend_from_slice(item.item_id.as_bytes());
        push(&mut text, at);
        let at = text.len();
        number(&mut text, item.score);
        push(&mut text, at);
        ids.clear();
        ids.extend(item.because.iter().map(|b| b.item_id.as_str()));
        let at = text.len();
        text.extend_from_slice(describe(&item.effects, &ids).as_bytes());
        push(&mut text, at);
        for b in &item.because {
            let at = text.len();
            text.extend_from_slice(b.item_id.as_bytes());
            push(&mut text, at);
            let at = text.len();
            number(&mut text, b.weight);
            push(&mut text, at);
        }
        ranks.push(item.upstream_rank as u32);
        because.push(item.because.len().min(u8::MAX as usize) as u8);
    }
    let text = String::from_utf8(text).map_err(|e| failed(e.to_string()))?;
    let any_effects = r.items.iter().any(|i| !i.effects.is_none());
    let rest = Rest {
        effects: any_effects.then(|| r.items.iter().map(|i| &i.effects).collect()),
        personalised: r.personalised,
        reason: &r.reason,
        hidden: r.hidden.iter().map(HiddenOut::from).collect(),
        backend,
        millis,
        timings,
    };
    let rest = serde_json::to_string(&rest).map_err(|e| failed(e.to_string()))?;
    build_ranking(&text, &ends, &ranks, &because, &rest)
        .map_err(|e| failed(crate::js::describe(&e)))
}
