//! Big buffers kept between calls. A fresh multi-megabyte `Vec` is mapped anew by the
//! allocator and costs a page fault per 4 KiB on first touch; a training step allocates
//! tens of megabytes (trace, pre-activations, gate gradients), so reusing them saves more
//! than the zeroing they need.

use std::sync::Mutex;

use crate::cpu::forward::Trace;

/// Most buffers kept (a pass holds a few at a time).
const KEPT: usize = 8;

/// Buffers a model keeps for its next call. Concurrent calls on one model each get their
/// own: a call that finds the store busy allocates as before.
#[derive(Default)]
pub struct Reuse {
    trace: Mutex<Trace<f32>>,
    buffers: Mutex<Vec<Vec<f32>>>,
}

impl Reuse {
    /// The trace left by the last pass (its buffers are recycled by the next pass).
    pub fn take_trace(&self) -> Trace<f32> {
        self.trace
            .try_lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default()
    }

    pub fn keep_trace(&self, trace: Trace<f32>) {
        if let Ok(mut slot) = self.trace.try_lock() {
            *slot = trace;
        }
    }

    /// A buffer of `len` floats whose contents are unspecified (the caller overwrites it).
    pub fn any(&self, len: usize) -> Vec<f32> {
        let mut buffer = self.closest(len);
        buffer.resize(len, 0.0);
        buffer
    }

    /// A buffer of `len` zeros.
    pub fn zeros(&self, len: usize) -> Vec<f32> {
        let mut buffer = self.closest(len);
        buffer.clear();
        buffer.resize(len, 0.0);
        buffer
    }

    /// Keeps `buffer` for a later call.
    pub fn give(&self, buffer: Vec<f32>) {
        if let Ok(mut kept) = self.buffers.try_lock() {
            if kept.len() < KEPT {
                kept.push(buffer);
            }
        }
    }

    /// The kept buffer with the smallest capacity that holds `len`, else the largest.
    fn closest(&self, len: usize) -> Vec<f32> {
        let Ok(mut kept) = self.buffers.try_lock() else {
            return Vec::new();
        };
        let fits = (0..kept.len())
            .filter(|&i| kept[i].capacity() >= len)
            .min_by_key(|&i| kept[i].capacity());
        let largest = (0..kept.len()).max_by_key(|&i| kept[i].capacity());
        match fits.or(largest) {
            Some(i) => kept.swap_remove(i),
            None => Vec::new(),
        }
    }
}

/// A clone starts with nothing kept.
impl Clone for Reuse {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for Reuse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reuse")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_with_the_asked_length_and_zeros_when_asked() {
        let reuse = Reuse::default();
        reuse.give(vec![7.0; 10]);
        let any = reuse.any(4);
        assert_eq!(any.len(), 4);
        assert!(any.capacity() >= 10, "the kept buffer was reused");
        reuse.give(any);
        let zeros = reuse.zeros(12);
        assert_eq!(zeros, vec![0.0; 12]);
    }
}
