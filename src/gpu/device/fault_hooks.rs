//! Faults on demand, for the tests of what a fault does (built only with the `fault-hooks`
//! feature, which the crate's own tests turn on). Each hook is armed per thread, so tests
//! running at once do not trip each other's.

use std::cell::Cell;

thread_local! {
    static PANIC_IN_SUBMISSION: Cell<bool> = const { Cell::new(false) };
}

/// The next submission this thread makes panics inside the call (as a panic inside wgpu
/// would), once.
pub fn panic_in_next_submission() {
    PANIC_IN_SUBMISSION.with(|armed| armed.set(true));
}

/// Called by every submission: panics when armed.
pub(crate) fn before_submission() {
    if PANIC_IN_SUBMISSION.with(|armed| armed.replace(false)) {
        panic!("injected fault: a panic inside a submission");
    }
}
