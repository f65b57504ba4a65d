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
