//! `PlanBuilder`: records dispatches with their params and buffers, then creates the params
//! buffer and every bind group once, when the plan is finished.

use bytemuck::Pod;

use super::ops::{Dispatch, Op, Plan};
use crate::error::{Error, Result};
use crate::gpu::device::{uniform_init, Constants, GpuContext, MAX_CHUNK_STEPS};
use crate::gpu::kernels::{
    BindingKind, Kernel, ParamArena, PARAMS_BINDING_SIZE, STEP_INDEX_BINDING_SIZE,
};

/// A dispatch waiting for its bind group.
struct PendingDispatch {
    kernel: Kernel,
    layer: usize,
    group: usize,
    pipeline: wgpu::ComputePipeline,
    workgroups: [u32; 3],
}

enum Pending {
    Dispatch(PendingDispatch, u32),
    Steps(Vec<PendingDispatch>, u32, u32),
    Transfer(Op),
}

/// One kernel of a run of steps: its bind group, override constants and grid.
pub(crate) struct StepKernel {
    pub group: usize,
    pub constants: Constants,
    pub workgroups: [usize; 3],
}

/// The storage buffers of one bind group, by binding name (see [`PlanBuilder::group`]).
pub(crate) type Bound<'b> = [(&'static str, &'b wgpu::Buffer)];

/// A bind group waiting to be created: its kernel, label and named storage buffers.
struct PendingGroup {
    kernel: Kernel,
    label: String,
    buffers: Vec<(&'static str, wgpu::Buffer)>,
}

/// Collects a plan; see the module docs.
pub(crate) struct PlanBuilder<'a> {
    ctx: &'a GpuContext,
    arena: ParamArena,
    groups: Vec<PendingGroup>,
    ops: Vec<Pending>,
}

impl<'a> PlanBuilder<'a> {
    pub fn new(ctx: &'a GpuContext) -> Self {
        let alignment = ctx.device().limits().min_uniform_buffer_offset_alignment;
        Self {
            ctx,
            arena: ParamArena::new(alignment),
            groups: Vec::new(),
            ops: Vec::new(),
        }
    }

    /// The context the plan is built on.
    pub fn context(&self) -> &'a GpuContext {
        self.ctx
    }

    /// Registers the storage buffers of one bind group of `kernel`, each by the name of its
    /// binding in the kernel table (any order; every storage binding exactly once: checked in
    /// [`PlanBuilder::finish`]). The params and step-index uniforms are bound by the builder.
    /// Returns its handle for [`PlanBuilder::dispatch`].
    pub fn group(&mut self, kernel: Kernel, label: &str, buffers: &Bound<'_>) -> usize {
        self.groups.push(PendingGroup {
            kernel,
            label: label.to_string(),
            buffers: buffers.iter().map(|&(n, b)| (n, b.clone())).collect(),
        });
        self.groups.len() - 1
    }

    /// Records a dispatch of `group`'s kernel (its default constants) with `params` in a
    /// fresh params slot.
    pub fn dispatch<P: Pod>(
        &mut self,
        layer: usize,
        group: usize,
        params: &P,
        workgroups: [u32; 3],
    ) -> Result<()> {
        let constants = self.groups[group].kernel.spec().constants;
        let workgroups = workgroups.map(|n| n as usize);
        self.dispatch_with(layer, group, constants, params, workgroups)
    }

    /// [`PlanBuilder::dispatch`] with explicit override constants.
    pub fn dispatch_with<P: Pod>(
        &mut self,
        layer: usize,
        group: usize,
        constants: &[(&'static str, f64)],
        params: &P,
        workgroups: [usize; 3],
    ) -> Result<()> {
        let pending = self.pending(layer, group, constants, workgroups)?;
        let offset = self.arena.push(params);
        self.ops.push(Pending::Dispatch(pending, offset));
        Ok(())
    }

    /// Records `count` steps of the per-step kernels `kernels` (dispatched in this order at
    /// every step) sharing one params slot; step i reads step-index slot i.
    pub fn steps<P: Pod>(
        &mut self,
        layer: usize,
        kernels: &[StepKernel],
        params: &P,
        count: usize,
    ) -> Result<()> {
        if count > MAX_CHUNK_STEPS {
            return Err(Error::Internal(format!(
                "a chunk of {count} steps is longer than the {MAX_CHUNK_STEPS} step-index slots"
            )));
        }
        let pending = kernels
            .iter()
            .map(|k| self.pending(layer, k.group, &k.constants, k.workgroups))
            .collect::<Result<Vec<_>>>()?;
        let offset = self.arena.push(params);
        self.ops.push(Pending::Steps(pending, offset, count as u32));
        Ok(())
    }

    fn pending(
        &self,
        layer: usize,
        group: usize,
        constants: &[(&'static str, f64)],
        workgroups: [usize; 3],
    ) -> Result<PendingDispatch> {
        let kernel = self.groups[group].kernel;
        let device = self.ctx.device();
        let max = device.limits().max_compute_workgroups_per_dimension;
        let mut grid = [0u32; 3];
        for (g, &n) in grid.iter_mut().zip(&workgroups) {
            *g = u32::try_from(n)
                .ok()
                .filter(|&n| n <= max)
                .ok_or_else(|| Error::Limit {
                    what: format!("{} ({workgroups:?} workgroups)", kernel.name()),
                    limit: "max_compute_workgroups_per_dimension",
                    needed: n as u64,
                    available: max as u64,
                })?;
        }
        Ok(PendingDispatch {
            kernel,
            layer,
            group,
            pipeline: self.ctx.pipelines().get(device, kernel, constants)?,
            workgroups: grid,
        })
    }

    pub fn copy(
        &mut self,
        src: &wgpu::Buffer,
        src_offset: u64,
        dst: &wgpu::Buffer,
        dst_offset: u64,
        size: u64,
    ) {
        self.ops.push(Pending::Transfer(Op::Copy {
            src: src.clone(),
            src_offset,
            dst: dst.clone(),
            dst_offset,
            size,
        }));
    }

    pub fn clear(&mut self, buffer: &wgpu::Buffer) {
        self.ops.push(Pending::Transfer(Op::Clear {
            buffer: buffer.clone(),
        }));
    }

    /// Creates the params buffer and the bind groups; returns the finished plan.
    pub fn finish(self) -> Result<Plan> {
        let device = self.ctx.device();
        let limits = device.limits();
        let bytes = self.arena.bytes();
        if bytes.len() as u64 > limits.max_buffer_size {
            return Err(Error::Limit {
                what: format!("the per-dispatch params ({} bytes)", bytes.len()),
                limit: "max_buffer_size",
                needed: bytes.len() as u64,
                available: limits.max_buffer_size,
            });
        }
        let params = uniform_init(device, "params", bytes);
        let (step_slots, step_stride) = self.ctx.step_slots();
        let uniform = |buffer, size| {
            wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer,
                offset: 0,
                size: wgpu::BufferSize::new(size),
            })
        };
        let mut groups = Vec::with_capacity(self.groups.len());
        for group in &self.groups {
            let spec = group.kernel.spec();
            let storage = spec.bindings.iter().filter(|b| b.is_storage()).count();
            if group.buffers.len() != storage {
                return Err(Error::Internal(format!(
                    "bind group `{}` has {} buffers for the {storage} storage bindings of {}",
                    group.label,
                    group.buffers.len(),
                    spec.entry
                )));
            }
            let mut entries = Vec::with_capacity(spec.bindings.len());
            for (i, binding) in spec.bindings.iter().enumerate() {
                let resource = match binding.kind {
                    BindingKind::Params => uniform(&params, PARAMS_BINDING_SIZE),
                    BindingKind::StepIndex => uniform(step_slots, STEP_INDEX_BINDING_SIZE),
                    BindingKind::Read | BindingKind::ReadWrite => {
                        let found = group.buffers.iter().find(|(name, _)| *name == binding.name);
                        let Some((_, buffer)) = found else {
                            return Err(Error::Internal(format!(
                                "bind group `{}` has no buffer for `{}` of {}",
                                group.label, binding.name, spec.entry
                            )));
                        };
                        buffer.as_entire_binding()
                    }
                };
                entries.push(wgpu::BindGroupEntry {
                    binding: i as u32,
                    resource,
                });
            }
            groups.push(device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&group.label),
                layout: self.ctx.pipelines().layout(group.kernel),
                entries: &entries,
            }));
        }
        let bound = |p: PendingDispatch| Dispatch {
            kernel: p.kernel,
            layer: p.layer,
            pipeline: p.pipeline,
            bind_group: groups[p.group].clone(),
            workgroups: p.workgroups,
        };
        let ops = self
            .ops
            .into_iter()
            .map(|op| match op {
                Pending::Dispatch(p, params_offset) => Op::Dispatch {
                    dispatch: bound(p),
                    params_offset,
                },
                Pending::Steps(kernels, params_offset, count) => Op::Steps {
                    kernels: kernels.into_iter().map(bound).collect(),
                    params_offset,
                    count,
                    step_stride,
                },
                Pending::Transfer(op) => op,
            })
            .collect();
        Ok(Plan { ops })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::device::storage_zeros;

    /// A bind group whose buffer names miss a binding of its kernel is an internal error
    /// naming the binding, not a bind group with a buffer in the wrong slot.
    #[test]
    fn a_misnamed_binding_is_an_internal_error_naming_it() {
        let ctx = GpuContext::new().unwrap_or_else(|e| {
            panic!("no GPU adapter ({e}); install one, e.g. apt-get install mesa-vulkan-drivers")
        });
        let buffer = storage_zeros(ctx.device(), "any", 16);
        let mut plan = PlanBuilder::new(&ctx);
        let names = [("slot", &buffer), ("source", &buffer), ("dst", &buffer)];
        plan.group(Kernel::Rows, "rows", &names);
        let Err(Error::Internal(message)) = plan.finish() else {
            panic!("a misnamed binding was accepted");
        };
        assert!(message.contains("`src`"), "{message}");

        let mut plan = PlanBuilder::new(&ctx);
        let named = [("slot", &buffer), ("src", &buffer), ("dst", &buffer)];
        plan.group(Kernel::Rows, "rows", &named);
        plan.finish().expect("the right names bind");
    }
}
