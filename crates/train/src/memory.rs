//! How a training process's allocator treats freed memory.
//!
//! A training step allocates and frees the same large buffers every time: the sampled logits
//! alone are ~490 targets × 16,384 negatives × 4 bytes = 32 MB, and their softmax, gradients
//! and the embedding table's gradient are as large. glibc's malloc serves blocks of 32 MB and
//! more from fresh `mmap`s and hands free memory at the top of its heap back to the OS, so
//! every step page-faulted ~100 MB of zeroed pages in again: in a `perf` profile of the
//! Diginetica run, page faults and page clearing were ~12% of the time, and the process spent
//! 5.3 s of system CPU beside 12.3 s of user CPU over 60 steps (`examples/train_steps`).
//! With [`keep_freed_memory`] the same 60 steps take 0.36 s of system CPU and 0.216 instead of
//! 0.292 CPU-seconds a step. The cost: the process keeps its peak heap (a few hundred MB for
//! these models) until it exits, which is why only processes that train call it.

/// Keep freed memory in the process for reuse: no `mmap` per large block, no trimming of the
/// heap's top. Call once, early, in a process that trains (`sessionrank train`, the example
/// benchmarks); a no-op where the allocator is not glibc's.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only changes glibc's allocator parameters; it takes plain integers,
    // touches no memory of ours, and glibc serialises it against concurrent allocations.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}
