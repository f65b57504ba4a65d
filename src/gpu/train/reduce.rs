//! Recording a sum over a buffer (the loss, the squared gradient norm) in a fixed order:
//! one workgroup for short inputs; for long ones, one workgroup per block of items into
//! `partials`, then one workgroup over those (reduce.wgsl). Bitwise reproducible.

use crate::error::{Error, Result};
use crate::gpu::kernels::{to_u32, Kernel, ReduceParams};
use crate::gpu::plan::PlanBuilder;

/// Items a single workgroup sums on its own; longer inputs take two passes.
const ONE_PASS_ITEMS: usize = 16_384;
/// Partial sums of the first pass at most (the length of the `partials` buffer).
pub(super) const MAX_BLOCKS: usize = 1024;

/// Records `out[out_index] = scale * Σ f(x[i])` over `n` items, f(v) = v² when `square`.
#[allow(clippy::too_many_arguments)]
pub(super) fn record_sum(
    plan: &mut PlanBuilder<'_>,
    layer: usize,
    label: &str,
    (x, n): (&wgpu::Buffer, usize),
    square: bool,
    scale: f32,
    (out, out_index): (&wgpu::Buffer, u32),
    partials: &wgpu::Buffer,
) -> Result<()> {
    let params = |n: usize, square: bool, scale: f32, out_index: u32, block: usize| {
        Ok::<_, Error>(ReduceParams {
            n: to_u32(label, n)?,
            out_index,
            square: square as u32,
            scale,
            block: to_u32(label, block)?,
            _pad: [0; 3],
        })
    };
    if n <= ONE_PASS_ITEMS {
        let group = plan.group(Kernel::ReduceSum, label, &[("x", x), ("out", out)]);
        return plan.dispatch(
            layer,
            group,
            &params(n, square, scale, out_index, n)?,
            [1, 1, 1],
        );
    }
    let blocks = n.div_ceil(ONE_PASS_ITEMS).min(MAX_BLOCKS);
    let block = n.div_ceil(blocks);
    let group = plan.group(Kernel::ReduceBlocks, label, &[("x", x), ("out", partials)]);
    plan.dispatch(
        layer,
        group,
        &params(n, square, 1.0, 0, block)?,
        [to_u32(label, blocks)?, 1, 1],
    )?;
    let group = plan.group(Kernel::ReduceSum, label, &[("x", partials), ("out", out)]);
    plan.dispatch(
        layer,
        group,
        &params(blocks, false, scale, out_index, blocks)?,
        [1, 1, 1],
    )
}
