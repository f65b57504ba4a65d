//! In-place and strided element maps the training plans record: the strided copy
//! (shaders/permute.wgsl) and the dropout mask (shaders/dropout.wgsl).

use super::trainer::GpuTrainer;
use crate::error::Result;
use crate::gpu::kernels::{elementwise_groups, to_u32, DropoutParams, Kernel, PermuteParams};
use crate::gpu::plan::PlanBuilder;

/// `dst[dst_at + i] = src[src_at + Σ_a coord_a(i) · strides[a]]` (`+ src[that + add]` with
/// `add`) over `dims`, the last axis fastest.
#[allow(clippy::too_many_arguments)]
pub(super) fn record_permute(
    plan: &mut PlanBuilder<'_>,
    layer: usize,
    label: &str,
    (src, src_at): (&wgpu::Buffer, usize),
    (dst, dst_at): (&wgpu::Buffer, usize),
    dims: [usize; 4],
    strides: [usize; 4],
    add: Option<usize>,
) -> Result<()> {
    let u = to_u32;
    let count: usize = dims.iter().product();
    let group = plan.group(Kernel::Permute, label, &[("src", src), ("dst", dst)]);
    let p = PermuteParams {
        count: u("count", count)?,
        src_offset: u("offset", src_at)?,
        dst_offset: u("offset", dst_at)?,
        has_add: add.is_some() as u32,
        dims: [
            u("dim", dims[0])?,
            u("dim", dims[1])?,
            u("dim", dims[2])?,
            u("dim", dims[3])?,
        ],
        strides: [
            u("stride", strides[0])?,
            u("stride", strides[1])?,
            u("stride", strides[2])?,
            u("stride", strides[3])?,
        ],
        add_offset: u("offset", add.unwrap_or(0))?,
        _pad: [0; 3],
    };
    plan.dispatch(layer, group, &p, elementwise_groups(count)?)
}

/// Drops site `site` of `data` (`n` elements) in place, when its probability is not 0: the
/// forward's dropout, or (the same map, being linear) its gradient.
pub(super) fn record_dropout(
    t: &GpuTrainer,
    plan: &mut PlanBuilder<'_>,
    site: usize,
    (data, n): (&wgpu::Buffer, usize),
) -> Result<()> {
    let layers = t.model.config().num_layers;
    let p = t.options.dropout.rate(site, layers);
    if p <= 0.0 {
        return Ok(());
    }
    let group = plan.group(
        Kernel::Dropout,
        "dropout",
        &[("rng", &t.rng), ("data", data)],
    );
    let params = DropoutParams {
        n: to_u32("dropout elements", n)?,
        site: to_u32("dropout site", site)?,
        keep_below: crate::train::dropout::keep_below(p),
        scale: crate::train::dropout::scale(p),
    };
    plan.dispatch(site.min(layers - 1), group, &params, elementwise_groups(n)?)
}
