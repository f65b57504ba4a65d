//! Bias gradients: the column sums of a `[rows, N]` gradient over every (t, b), in two passes
//! of fixed order (column_sum.wgsl): splits of up to 256 rows into partial sums, then the
//! partial sums of each column.

use crate::error::Result;
use crate::gpu::kernels::{to_u32, ColumnParams, Kernel};
use crate::gpu::plan::PlanBuilder;

/// Rows a split sums at most before there are `MAX_SPLITS` splits.
const ROWS_PER_SPLIT: usize = 256;
/// Splits at most: `partials` holds `MAX_SPLITS * N` floats.
pub(super) const MAX_SPLITS: usize = 64;

/// `(buffer, offset, row stride)` of a matrix read by rows.
pub(super) type Rows<'a> = (&'a wgpu::Buffer, usize, usize);

/// Records `out[out_offset + n] = Σ_m x(m, n)` for `n < columns` over `rows` rows (and the
/// same at `copy_offset` when given).
#[allow(clippy::too_many_arguments)]
pub(super) fn record_column_sums(
    plan: &mut PlanBuilder<'_>,
    layer: usize,
    label: &str,
    (x, x_offset, row_stride): Rows<'_>,
    (rows, columns): (usize, usize),
    (out, out_offset, copy_offset): (&wgpu::Buffer, usize, Option<usize>),
    partials: &wgpu::Buffer,
) -> Result<()> {
    let splits = rows.div_ceil(ROWS_PER_SPLIT).clamp(1, MAX_SPLITS);
    let u = |v: usize| to_u32(label, v);
    let params = ColumnParams {
        m: u(rows)?,
        n: u(columns)?,
        row_stride: u(row_stride)?,
        x_offset: u(x_offset)?,
        out_offset: u(out_offset)?,
        block: u(rows.div_ceil(splits))?,
        splits: u(splits)?,
        copy_offset: copy_offset.map_or(Ok(u32::MAX), u)?,
    };
    // column tiles on x, and on z past 65,535
    let tiles = u(columns.div_ceil(64))?;
    let (tx, tz) = (tiles.min(65_535), tiles.div_ceil(65_535));
    let group = plan.group(
        Kernel::ColumnPartial,
        label,
        &[("x", x), ("partials", partials), ("out", out)],
    );
    plan.dispatch(layer, group, &params, [tx, u(splits)?, tz])?;
    let group = plan.group(
        Kernel::ColumnFinish,
        label,
        &[("x", x), ("partials", partials), ("out", out)],
    );
    plan.dispatch(layer, group, &params, [tx, 1, tz])
}
