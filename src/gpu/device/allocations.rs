//! The allocations made on this thread inside the open error scopes, (label, bytes), so that
//! an out-of-memory error can name the buffer and its size (see `guard.rs`).

use std::cell::RefCell;

thread_local! {
    /// The allocations made on this thread since the outermost open scope, (label, bytes).
    static ALLOCATIONS: RefCell<Vec<(String, u64)>> = const { RefCell::new(Vec::new()) };
    /// How many scopes are open on this thread.
    static DEPTH: RefCell<usize> = const { RefCell::new(0) };
}

/// Notes an allocation of `bytes` for `label` (inside a scope; otherwise nothing to name).
pub(crate) fn note_allocation(label: &str, bytes: u64) {
    if DEPTH.with(|d| *d.borrow()) > 0 {
        ALLOCATIONS.with(|a| a.borrow_mut().push((label.to_string(), bytes)));
    }
}

/// A scope opens: from now on allocations are noted. Returns where its record starts.
pub(crate) fn open() -> usize {
    DEPTH.with(|d| *d.borrow_mut() += 1);
    ALLOCATIONS.with(|a| a.borrow().len())
}

/// The scope opened at `first` closes: the allocations noted since.
pub(crate) fn close(first: usize) -> Vec<(String, u64)> {
    let allocations = ALLOCATIONS.with(|a| a.borrow_mut().split_off(first));
    DEPTH.with(|d| *d.borrow_mut() -= 1);
    allocations
}
