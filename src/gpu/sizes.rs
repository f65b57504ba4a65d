//! Size checks shared by the plan builders: u32 conversion for the shaders, buffer limits,
//! and the gemm grid.

use super::kernels::GEMM_TILE;
use crate::error::{Error, Result};

pub(crate) fn to_u32(what: &str, n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::Input(format!("{what} ({n}) does not fit in 32 bits")))
}

/// The largest buffer that can be bound whole, in bytes, and the limit that sets it.
pub(crate) fn binding_limit(limits: &wgpu::Limits) -> (&'static str, u64) {
    if limits.max_storage_buffer_binding_size <= limits.max_buffer_size {
        (
            "max_storage_buffer_binding_size",
            limits.max_storage_buffer_binding_size,
        )
    } else {
        ("max_buffer_size", limits.max_buffer_size)
    }
}

/// Checks that a buffer of `len` f32 fits the device's binding limits.
pub(crate) fn check_size(limits: &wgpu::Limits, what: &str, len: usize) -> Result<()> {
    let bytes = len as u64 * 4;
    let (limit, available) = binding_limit(limits);
    if bytes > available {
        return Err(Error::Limit {
            what: format!("{what} ({bytes} bytes)"),
            limit,
            needed: bytes,
            available,
        });
    }
    Ok(())
}

/// gemm workgroups for an `m x n` output.
pub(crate) fn gemm_groups(m: usize, n: usize) -> Result<[u32; 3]> {
    let tile = GEMM_TILE as usize;
    Ok([
        to_u32("gemm columns", n.div_ceil(tile))?,
        to_u32("gemm rows", m.div_ceil(tile))?,
        1,
    ])
}
