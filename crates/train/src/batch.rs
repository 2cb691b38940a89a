//! Training batches: sessions → (inputs, next-item targets), bucketed by length.

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::Rng;
use rand::seq::SliceRandom;
use sessionrank_core::features::{EncodedEvent, session_input};
use sessionrank_data::Session;
use sessionrank_model::SessionInput;

/// One step's input: session tensors plus the flat positions that have a target.
#[derive(Debug, Clone)]
pub struct TrainBatch {
    pub input: SessionInput,
    /// `[m]` indices into the flattened `[batch * len]` positions that have a next item.
    pub positions: Tensor<1, Int>,
    /// `[m]` table row of the next item at each of those positions.
    pub targets: Tensor<1, Int>,
    pub n_targets: usize,
}

/// Sessions of at least two events, cut to their last `max_len + 1` events (the input is
/// every event but the last; the target of event `t` is event `t + 1`).
pub fn training_sequences(sessions: &[Session], max_len: usize) -> Vec<Vec<EncodedEvent>> {
    sessions
        .iter()
        .filter(|s| s.events.len() >= 2)
        .map(|s| {
            let ev = &s.events[s.events.len().saturating_sub(max_len + 1)..];
            ev.iter().map(|e| EncodedEvent { row: e.item + 1, kind: e.kind, timestamp: e.timestamp }).collect()
        })
        .collect()
}

/// Batches of sequence indices with similar lengths (less padding), in shuffled order.
pub fn length_bucketed_batches(seqs: &[Vec<EncodedEvent>], batch_size: usize, rng: &mut impl Rng) -> Vec<Vec<usize>> {
    let mut idx: Vec<usize> = (0..seqs.len()).collect();
    idx.shuffle(rng);
    // Sort shuffled chunks of 50 batches by length: batches hold similar lengths, yet the
    // epoch order stays random.
    let chunk = batch_size * 50;
    let mut batches = Vec::new();
    for c in idx.chunks_mut(chunk) {
        c.sort_by_key(|&i| seqs[i].len());
        batches.extend(c.chunks(batch_size).map(|b| b.to_vec()));
    }
    batches.shuffle(rng);
    batches
}

/// Build a batch; `id_dropout` hides that share of input item ids (content-only rows use
/// `unknown_row(row)` provided by the caller's table).
pub fn make_batch(seqs: &[Vec<EncodedEvent>], ids: &[usize], max_len: usize, device: &Device) -> TrainBatch {
    let inputs: Vec<&[EncodedEvent]> = ids.iter().map(|&i| &seqs[i][..seqs[i].len() - 1]).collect();
    let len = inputs.iter().map(|s| s.len().min(max_len)).max().unwrap_or(1).max(1);
    let mut positions = Vec::new();
    let mut targets = Vec::new();
    for (b, &i) in ids.iter().enumerate() {
        let s = &seqs[i];
        let n_in = (s.len() - 1).min(max_len);
        let start = s.len() - 1 - n_in;
        for t in 0..n_in {
            positions.push((b * len + t) as i64);
            targets.push(s[start + t + 1].row as i64);
        }
    }
    let m = positions.len();
    TrainBatch {
        input: session_input(&inputs, max_len, device),
        positions: Tensor::<1, Int>::from_data(TensorData::new(positions, [m]), device),
        targets: Tensor::<1, Int>::from_data(TensorData::new(targets, [m]), device),
        n_targets: m,
    }
}
