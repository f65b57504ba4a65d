//! The one poisoned-lock rule: a lock whose holder panicked still gives its value (every
//! value behind this crate's locks stays consistent between statements).

use std::sync::{Mutex, MutexGuard};

/// The value behind `mutex`, even if a thread panicked while holding it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
