//! `Workspace`: the buffers and plan of one inference shape `(T, B)`.

use super::buffers::ForwardBuffers;
use super::pass::{build_forward, ForwardOptions};
use crate::error::Result;
use crate::gpu::device::{guarded, staging, GpuContext};
use crate::gpu::kernels::Recurrence;
use crate::gpu::plan::{Plan, PlanBuilder};
use crate::gpu::weights::ResidentWeights;
use crate::gpu::wisdom::Source;
use crate::shape::Dims;

pub(crate) struct Workspace {
    pub dims: Dims,
    pub buffers: ForwardBuffers,
    pub plan: Plan,
    pub variant: Recurrence,
    /// where the variant came from
    pub source: Source,
    pub chunk_steps: usize,
    /// a mappable copy of output, h_n and c_n, one after the other, for host readback;
    /// reused call after call
    pub readback: wgpu::Buffer,
}

impl Workspace {
    pub async fn new(
        ctx: &GpuContext,
        weights: &ResidentWeights,
        dims: Dims,
        options: ForwardOptions,
    ) -> Result<Self> {
        guarded(ctx, "preparing a shape", || {
            let device = ctx.device();
            let mut builder = PlanBuilder::new(ctx);
            let forward = build_forward(&mut builder, device, weights, dims, options)?;
            let plan = builder.finish()?;
            let (y_len, hn_len, cn_len) = forward.buffers.lens;
            let readback = staging(device, "output readback", y_len + hn_len + cn_len);
            Ok(Self {
                dims,
                buffers: forward.buffers,
                plan,
                variant: forward.variant,
                source: forward.source,
                chunk_steps: forward.chunk_steps,
                readback,
            })
        })
        .await
    }
}
