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
    /// With sampled softmax: the catalog rows making up this step's item table (row 0 =
    /// padding, then every input item, target and sampled negative); `input` and `targets`
    /// index into it. `None` = the whole catalog is the table.
    pub rows: Option<Tensor<1, Int>>,
}

/// Sessions of at least two events, cut to their last `max_len + 1` events (the input is
/// every event but the last; the target of event `t` is event `t + 1`).
pub fn training_sequences(sessions: &[Session], max_len: usize) -> Vec<Vec<EncodedEvent>> {
    sessions
        .iter()
        .filter(|s| s.events.len() >= 2)
        .map(|s| {
            let ev = &s.events[s.events.len().saturating_sub(max_len + 1)..];
            ev.iter()
                .map(|e| EncodedEvent { row: e.item + 1, kind: e.kind, timestamp: e.timestamp })
                .collect()
        })
        .collect()
}

/// The index in `sessions` of each of [`training_sequences`]' sequences (the sessions it
/// keeps, in order).
pub fn training_session_indices(sessions: &[Session]) -> Vec<u32> {
    (0..sessions.len() as u32).filter(|&i| sessions[i as usize].events.len() >= 2).collect()
}

/// Batches of sequence indices with similar lengths (less padding), in shuffled order.
pub fn length_bucketed_batches(
    seqs: &[Vec<EncodedEvent>],
    batch_size: usize,
    rng: &mut impl Rng,
) -> Vec<Vec<usize>> {
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
pub fn make_batch(
    seqs: &[Vec<EncodedEvent>],
    ids: &[usize],
    max_len: usize,
    device: &Device,
) -> TrainBatch {
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
        rows: None,
    }
}

/// Like [`make_batch`], but the softmax runs over a local table: the batch's own items plus
/// `negatives` items drawn uniformly from the catalog (shared by the whole batch). Costs
/// O(negatives) per step instead of O(catalog); every positive is in the table, so the
/// loss is a sampled-softmax estimate of the full one.
pub fn make_sampled_batch(
    seqs: &[Vec<EncodedEvent>],
    ids: &[usize],
    max_len: usize,
    n_rows: usize,
    negatives: usize,
    rng: &mut impl Rng,
    device: &Device,
) -> TrainBatch {
    let mut local = std::collections::HashMap::<u32, u32>::new();
    let mut rows: Vec<i64> = vec![0];
    let mut map = |row: u32, rows: &mut Vec<i64>| -> u32 {
        *local.entry(row).or_insert_with(|| {
            rows.push(row as i64);
            rows.len() as u32 - 1
        })
    };
    let remapped: Vec<Vec<EncodedEvent>> = ids
        .iter()
        .map(|&i| {
            seqs[i].iter().map(|e| EncodedEvent { row: map(e.row, &mut rows), ..*e }).collect()
        })
        .collect();
    for _ in 0..negatives {
        let r = rng.random_range(1..n_rows as u32);
        map(r, &mut rows);
    }
    let all: Vec<usize> = (0..remapped.len()).collect();
    let mut batch = make_batch(&remapped, &all, max_len, device);
    let n = rows.len();
    batch.rows = Some(Tensor::<1, Int>::from_data(TensorData::new(rows, [n]), device));
    batch
}
