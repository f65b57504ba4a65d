//! Size checks shared by the plan builders: u32 conversion for the shaders, buffer limits,
//! tile shrinking, and the grids of the gemm (or gemv) and the elementwise kernels.

use super::table::{Kernel, GEMM_TILE, WORKGROUP_SIZE};
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

/// Checks that a buffer of `len` f32 can exist on the device ([`Error::OutOfMemory`] past
/// `max_buffer_size`) and be bound whole ([`Error::Limit`]).
pub(crate) fn check_size(limits: &wgpu::Limits, what: &str, len: usize) -> Result<()> {
    let bytes = (len as u64).saturating_mul(4);
    if bytes > limits.max_buffer_size {
        return Err(Error::OutOfMemory {
            what: what.to_string(),
            bytes,
            max_buffer_size: limits.max_buffer_size,
            max_binding: limits.max_storage_buffer_binding_size,
        });
    }
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

/// The largest power of two <= n (1 for n = 0).
pub(crate) fn prev_power_of_two(n: u32) -> u32 {
    1 << (31 - n.max(1).leading_zeros())
}

/// One step of shrinking a workgroup's tiles until it fits a device, in the order the
/// recurrent kernels use: the depth of a staging round first (halved, rounded up), then the
/// splits of the sum, the units, the batch rows. False when all are 1.
pub(crate) fn shrink_tiles(
    depth: &mut u32,
    splits: &mut u32,
    units: &mut u32,
    rows: &mut u32,
) -> bool {
    if *depth > 1 {
        *depth = depth.div_ceil(2);
    } else if let Some(t) = [splits, units, rows].into_iter().find(|t| **t > 1) {
        *t /= 2;
    } else {
        return false;
    }
    true
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

/// Products of at most this many rows run as [`Kernel::Gemv`] (bitwise the gemm's result).
pub(crate) const GEMV_MAX_ROWS: usize = 8;

/// Invocations per workgroup of gemv (`@workgroup_size(64)` in gemm.wgsl).
const GEMV_WORKGROUP: usize = 64;

/// The kernel for an `m`-row product, and its workgroups for `n` columns: gemv for at most
/// `gemv_rows` rows (at most [`GEMV_MAX_ROWS`]), else the gemm.
pub(crate) fn product_kernel(m: usize, n: usize, gemv_rows: usize) -> Result<(Kernel, [u32; 3])> {
    if m <= gemv_rows.min(GEMV_MAX_ROWS) {
        let x = to_u32("gemv columns", n.div_ceil(GEMV_WORKGROUP))?;
        Ok((Kernel::Gemv, [x, to_u32("gemv rows", m)?, 1]))
    } else {
        Ok((Kernel::Gemm, gemm_groups(m, n)?))
    }
}

/// A 2-D grid of WORKGROUP_SIZE-wide groups covering `n` items (see loss.wgsl).
pub(crate) fn elementwise_groups(n: usize) -> Result<[u32; 3]> {
    let groups = to_u32(
        "elementwise groups",
        n.div_ceil(WORKGROUP_SIZE as usize).max(1),
    )?;
    let x = groups.min(65535);
    Ok([x, groups.div_ceil(x), 1])
}
