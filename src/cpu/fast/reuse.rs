//! Big buffers kept between calls. A fresh multi-megabyte `Vec` is mapped anew by the
//! allocator and costs a page fault per 4 KiB on first touch; a training step allocates
//! tens of megabytes (trace, pre-activations, gate gradients), so reusing them saves more
//! than the zeroing they need.

use std::sync::Mutex;

use crate::cpu::forward::Trace;
use crate::error::{Error, Result};

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

    /// A buffer of `len` floats whose contents are unspecified (the caller overwrites it);
    /// [`crate::Error::HostMemory`] naming `what` when the host cannot hold it.
    pub fn any(&self, what: &str, len: usize) -> Result<Vec<f32>> {
        let mut buffer = self.closest(what, len)?;
        buffer.resize(len, 0.0);
        Ok(buffer)
    }

    /// A buffer of `len` zeros; [`crate::Error::HostMemory`] naming `what` when the host
    /// cannot hold it.
    pub fn zeros(&self, what: &str, len: usize) -> Result<Vec<f32>> {
        let mut buffer = self.closest(what, len)?;
        buffer.clear();
        buffer.resize(len, 0.0);
        Ok(buffer)
    }

    /// Keeps `buffer` for a later call.
    pub fn give(&self, buffer: Vec<f32>) {
        if let Ok(mut kept) = self.buffers.try_lock() {
            if kept.len() < KEPT {
                kept.push(buffer);
            }
        }
    }

    /// The kept buffer with the smallest capacity that holds `len`, else the largest (or a
    /// new one) with room for `len` reserved by `try_reserve`, so that the resize that
    /// follows cannot fail.
    fn closest(&self, what: &str, len: usize) -> Result<Vec<f32>> {
        let mut buffer = match self.buffers.try_lock() {
            Ok(mut kept) => {
                let fits = (0..kept.len())
                    .filter(|&i| kept[i].capacity() >= len)
                    .min_by_key(|&i| kept[i].capacity());
                let largest = (0..kept.len()).max_by_key(|&i| kept[i].capacity());
                match fits.or(largest) {
                    Some(i) => kept.swap_remove(i),
                    None => Vec::new(),
                }
            }
            Err(_) => Vec::new(),
        };
        buffer
            .try_reserve_exact(len.saturating_sub(buffer.len()))
            .map_err(|_| Error::HostMemory {
                what: what.to_string(),
                bytes: (len as u64).saturating_mul(4),
            })?;
        Ok(buffer)
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
        let any = reuse.any("any", 4).unwrap();
        assert_eq!(any.len(), 4);
        assert!(any.capacity() >= 10, "the kept buffer was reused");
        reuse.give(any);
        let zeros = reuse.zeros("zeros", 12).unwrap();
        assert_eq!(zeros, vec![0.0; 12]);
        let err = reuse.zeros("huge", usize::MAX / 8).unwrap_err();
        assert!(err.to_string().contains("huge"), "{err}");
    }
}
