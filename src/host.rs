//! Host allocations whose size comes from a user (a flag, a file header, a tensor shape):
//! the element count is checked for overflow and the memory is reserved with `try_reserve`,
//! so that a size the machine cannot hold is [`Error::HostMemory`] naming it, not an abort.

use crate::error::{Error, Result};

/// The product of `dims`, or [`Error::HostMemory`] when it overflows `usize` (`what` names
/// the tensor; `elem_bytes` is the size of one element, for the message).
pub fn element_count(what: &str, dims: &[usize], elem_bytes: usize) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|n| n.checked_mul(elem_bytes).is_some())
        .ok_or_else(|| Error::HostMemory {
            what: format!("{what} {dims:?}"),
            bytes: dims
                .iter()
                .fold(elem_bytes as u64, |n, &d| n.saturating_mul(d as u64)),
        })
}

/// An empty vector with room for `len` elements, or [`Error::HostMemory`] when the host
/// cannot reserve it.
pub fn try_with_capacity<T>(what: &str, len: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| Error::HostMemory {
        what: what.to_string(),
        bytes: (len as u64).saturating_mul(std::mem::size_of::<T>() as u64),
    })?;
    Ok(v)
}

/// `len` copies of `value`, or [`Error::HostMemory`] when the host cannot hold them.
pub fn try_filled<T: Clone>(what: &str, len: usize, value: T) -> Result<Vec<T>> {
    let mut v = try_with_capacity(what, len)?;
    v.resize(len, value);
    Ok(v)
}

/// The host bytes a call will hold at once (its big buffers, summed with overflow checks),
/// checked before any of them is allocated: [`HostBytes::check`] reserves the total once and
/// gives it back untouched, so that a call the host cannot hold is [`Error::HostMemory`]
/// naming its size, never an abort half-way (and never a page touched first: on Linux a
/// reservation larger than the machine's memory fails at once, where the same bytes in
/// several smaller buffers would each succeed and be killed when written).
#[derive(Clone, Copy, Debug)]
pub(crate) struct HostBytes {
    /// `None` once the sum overflowed.
    bytes: Option<usize>,
}

/// Totals under this are not reserved to check them: a host that cannot hold them fails
/// anywhere, and a check per small call (a streamed step) would cost an allocation.
const CHECKED_FROM: usize = 64 << 20;

impl HostBytes {
    /// Nothing yet.
    pub fn new() -> Self {
        Self { bytes: Some(0) }
    }

    /// Adds `count` buffers of `dims` elements of `elem_bytes` bytes each.
    pub fn add(&mut self, dims: &[usize], elem_bytes: usize, count: usize) -> &mut Self {
        let buffer = dims
            .iter()
            .try_fold(elem_bytes, |n, &d| n.checked_mul(d))
            .and_then(|b| b.checked_mul(count));
        self.bytes = self.bytes.zip(buffer).and_then(|(a, b)| a.checked_add(b));
        self
    }

    /// The total so far (saturating at `u64::MAX`).
    pub fn total(&self) -> u64 {
        self.bytes.map_or(u64::MAX, |b| b as u64)
    }

    /// [`Error::HostMemory`] naming `what()` when the total overflows, exceeds `isize::MAX`
    /// (no allocation can be that large) or cannot be reserved; otherwise nothing (the
    /// reservation is given back without a page of it touched). `what` runs only on error.
    pub fn check(&self, what: impl FnOnce() -> String) -> Result<()> {
        let error = |what: String| Error::HostMemory {
            what,
            bytes: self.total(),
        };
        match self.bytes {
            None => Err(error(what())),
            Some(bytes) if bytes > isize::MAX as usize => Err(error(what())),
            Some(bytes) if bytes < CHECKED_FROM => Ok(()),
            Some(bytes) => {
                let mut probe: Vec<u8> = Vec::new();
                probe.try_reserve_exact(bytes).map_err(|_| error(what()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_the_host_cannot_hold_are_errors_naming_them() {
        let err = element_count("x", &[usize::MAX, 2], 4).unwrap_err();
        assert!(err.to_string().contains("x [") && err.to_string().contains("bytes"));
        assert_eq!(element_count("x", &[3, 4], 4).unwrap(), 12);
        let err = try_filled::<f32>("huge buffer", usize::MAX / 8, 0.0).unwrap_err();
        assert!(matches!(err, Error::HostMemory { .. }), "{err}");
        assert!(err.to_string().contains("huge buffer"));
        assert_eq!(try_filled("small", 3, 1.5f32).unwrap(), vec![1.5; 3]);
    }
}
