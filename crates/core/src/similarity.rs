//! The one dot product of the engine's vector arithmetic outside the model: "because you
//! viewed" weights (`reranker.rs`) and diversity (`rules.rs`) use it, so both sum in the same
//! order on every machine.

/// A dot product in eight independent sums (a fixed order, so every machine gives the same
/// value, and one the compiler turns into SIMD; a single running sum makes every addition
/// wait for the last).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}
