//! `PlanBuilder`: records dispatches with their params and buffers, then creates the params
//! buffer and every bind group once, when the plan is finished.

use bytemuck::Pod;

use super::context::GpuContext;
use super::kernels::Kernel;
use super::params::{ParamArena, PARAMS_BINDING_SIZE};
use super::plan::{Op, Plan};
use crate::error::{Error, Result};

enum Pending {
    Dispatch {
        kernel: Kernel,
        layer: usize,
        group: usize,
        params_offset: u32,
        workgroups: [u32; 3],
    },
    Copy(Op),
}

/// Collects a plan; see the module docs.
pub(crate) struct PlanBuilder<'a> {
    ctx: &'a GpuContext,
    arena: ParamArena,
    groups: Vec<(Kernel, String, Vec<wgpu::Buffer>)>,
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

    /// Registers the storage buffers of one bind group of `kernel` (bindings 1.., in order;
    /// binding 0 is always the params). Returns its handle for [`PlanBuilder::dispatch`].
    pub fn group(&mut self, kernel: Kernel, label: &str, buffers: &[&wgpu::Buffer]) -> usize {
        self.groups.push((
            kernel,
            label.to_string(),
            buffers.iter().map(|&b| b.clone()).collect(),
        ));
        self.groups.len() - 1
    }

    /// Records a dispatch of `group`'s kernel with `params` in a fresh params slot.
    pub fn dispatch<P: Pod>(
        &mut self,
        layer: usize,
        group: usize,
        params: &P,
        workgroups: [u32; 3],
    ) -> Result<u32> {
        let kernel = self.groups[group].0;
        let max = self
            .ctx
            .device()
            .limits()
            .max_compute_workgroups_per_dimension;
        if let Some(&n) = workgroups.iter().find(|&&n| n > max) {
            return Err(Error::Limit {
                what: format!("{} ({workgroups:?} workgroups)", kernel.name()),
                limit: "max_compute_workgroups_per_dimension",
                needed: n as u64,
                available: max as u64,
            });
        }
        let params_offset = self.arena.push(params);
        self.dispatch_at(layer, group, params_offset, workgroups);
        Ok(params_offset)
    }

    /// Records a dispatch reusing an earlier params slot.
    pub fn dispatch_at(
        &mut self,
        layer: usize,
        group: usize,
        params_offset: u32,
        workgroups: [u32; 3],
    ) {
        let kernel = self.groups[group].0;
        self.ops.push(Pending::Dispatch {
            kernel,
            layer,
            group,
            params_offset,
            workgroups,
        });
    }

    pub fn copy(
        &mut self,
        src: &wgpu::Buffer,
        src_offset: u64,
        dst: &wgpu::Buffer,
        dst_offset: u64,
        size: u64,
    ) {
        self.ops.push(Pending::Copy(Op::Copy {
            src: src.clone(),
            src_offset,
            dst: dst.clone(),
            dst_offset,
            size,
        }));
    }

    pub fn clear(&mut self, buffer: &wgpu::Buffer) {
        self.ops.push(Pending::Copy(Op::Clear {
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
        let params = super::buffers::uniform_init(device, "params", bytes);
        let groups: Vec<wgpu::BindGroup> = self
            .groups
            .iter()
            .map(|(kernel, label, buffers)| {
                let mut entries = vec![wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &params,
                        offset: 0,
                        size: wgpu::BufferSize::new(PARAMS_BINDING_SIZE),
                    }),
                }];
                entries.extend(
                    buffers
                        .iter()
                        .enumerate()
                        .map(|(i, b)| wgpu::BindGroupEntry {
                            binding: i as u32 + 1,
                            resource: b.as_entire_binding(),
                        }),
                );
                device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(label),
                    layout: &self.ctx.pipelines().get(*kernel).layout,
                    entries: &entries,
                })
            })
            .collect();
        let ops = self
            .ops
            .into_iter()
            .map(|op| match op {
                Pending::Dispatch {
                    kernel,
                    layer,
                    group,
                    params_offset,
                    workgroups,
                } => Op::Dispatch {
                    kernel,
                    layer,
                    bind_group: groups[group].clone(),
                    params_offset,
                    workgroups,
                },
                Pending::Copy(op) => op,
            })
            .collect();
        Ok(Plan { ops })
    }
}
