//! Minimal data parallelism over rows of a score matrix with `std::thread::scope`.
//!
//! The evaluation loops are embarrassingly parallel over cases; scoped threads keep this crate
//! free of a thread-pool dependency, and a batch is large enough (hundreds of rows × tens of
//! thousands of items) that spawning a few threads per batch costs nothing measurable.

use crate::session::Event;

/// Worker threads to use: the machine's parallelism (at least 1).
pub(crate) fn threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Call `f(scratch, prefix, row)` for every prefix and its `n_items`-long row of `out`, rows
/// split into contiguous chunks across threads; each thread builds its own scratch with `make`.
pub(crate) fn for_each_row<S, M, F>(
    prefixes: &[&[Event]],
    out: &mut [f32],
    n_items: usize,
    make: M,
    f: F,
) where
    M: Fn() -> S + Sync,
    F: Fn(&mut S, &[Event], &mut [f32]) + Sync,
{
    let rows = prefixes.len();
    if rows == 0 || n_items == 0 {
        return;
    }
    let t = threads().min(rows);
    if t <= 1 {
        let mut s = make();
        for (p, row) in prefixes.iter().zip(out.chunks_mut(n_items)) {
            f(&mut s, p, row);
        }
        return;
    }
    let per = rows.div_ceil(t);
    let (make, f) = (&make, &f);
    std::thread::scope(|scope| {
        for (pc, oc) in prefixes.chunks(per).zip(out.chunks_mut(per * n_items)) {
            scope.spawn(move || {
                let mut s = make();
                for (p, row) in pc.iter().zip(oc.chunks_mut(n_items)) {
                    f(&mut s, p, row);
                }
            });
        }
    });
}

/// `out[i] = f(i)` for `i in 0..out.len()`, split across threads.
pub(crate) fn map_indices<T: Send, F: Fn(usize) -> T + Sync>(out: &mut [T], f: F) {
    let n = out.len();
    if n == 0 {
        return;
    }
    let t = threads().min(n);
    let per = n.div_ceil(t);
    let f = &f;
    std::thread::scope(|scope| {
        for (ci, chunk) in out.chunks_mut(per).enumerate() {
            scope.spawn(move || {
                for (j, slot) in chunk.iter_mut().enumerate() {
                    *slot = f(ci * per + j);
                }
            });
        }
    });
}
