//! Heap allocations made by the current thread, as counted by the `hovercraft-sim` binary's
//! global allocator (`sim/src/main.rs`). `bench` reports them per simulated packet. In a
//! build without that allocator (the library's own tests) nothing counts and
//! [`allocations`] stays 0.

use std::cell::Cell;

thread_local! {
    // A plain per-thread cell: a shared atomic would put a locked add on every allocation.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// Called by the counting allocator on every allocation (and reallocation).
#[inline]
pub fn note_allocation() {
    // `try_with`: the allocator may run while the thread's locals are being torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

/// Allocations this thread made so far.
pub fn allocations() -> u64 {
    ALLOCATIONS.try_with(Cell::get).unwrap_or(0)
}
