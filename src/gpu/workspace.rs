//! `Workspace`: the buffers and plan of one inference shape `(T, B)`.

use super::builder::PlanBuilder;
use super::forward::{build_forward, ForwardBuffers};
use super::model::GpuLstm;
use super::plan::Plan;
use crate::error::{Error, Result};
use crate::shape::Dims;

pub(crate) struct Workspace {
    pub dims: Dims,
    pub buffers: ForwardBuffers,
    pub plan: Plan,
}

impl Workspace {
    pub fn new(model: &GpuLstm, dims: Dims) -> Result<Self> {
        let device = model.context().device();
        let scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let mut builder = PlanBuilder::new(model.context());
        let buffers = build_forward(&mut builder, model, dims, false)?;
        let plan = builder.finish()?;
        if let Some(source) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu {
                during: "workspace allocation",
                source,
            });
        }
        Ok(Self {
            dims,
            buffers,
            plan,
        })
    }
}
