//! A forward pass as data: the list of GPU operations, and the one function that records
//! them into a command encoder.

use super::kernels::{Kernel, Pipelines};

/// One GPU operation of a plan.
#[derive(Clone, Debug)]
pub enum Op {
    /// A compute dispatch with its params slot (dynamic offset into the params buffer).
    Dispatch {
        kernel: Kernel,
        /// Which LSTM layer the dispatch belongs to.
        layer: usize,
        bind_group: wgpu::BindGroup,
        params_offset: u32,
        workgroups: [u32; 3],
    },
    /// Zeroes a buffer (gradient carries before each layer's backward pass).
    Clear { buffer: wgpu::Buffer },
    /// A buffer-to-buffer copy (initial state in, final state out).
    Copy {
        src: wgpu::Buffer,
        src_offset: u64,
        dst: wgpu::Buffer,
        dst_offset: u64,
        size: u64,
    },
}

/// An ordered list of operations; recorded into one encoder, submitted once.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub ops: Vec<Op>,
}

impl Plan {
    /// Dispatches of `kernel` (any layer).
    pub fn count(&self, kernel: Kernel) -> usize {
        self.dispatches().filter(|(k, _)| *k == kernel).count()
    }

    /// Dispatches belonging to `layer`.
    pub fn count_in_layer(&self, layer: usize) -> usize {
        self.dispatches().filter(|(_, l)| *l == layer).count()
    }

    fn dispatches(&self) -> impl Iterator<Item = (Kernel, usize)> + '_ {
        self.ops.iter().filter_map(|op| match op {
            Op::Dispatch { kernel, layer, .. } => Some((*kernel, *layer)),
            Op::Copy { .. } | Op::Clear { .. } => None,
        })
    }

    /// Records every operation into `encoder`: consecutive dispatches share one compute pass,
    /// copies go between passes. No CPU wait happens anywhere in here.
    pub fn encode(&self, pipelines: &Pipelines, encoder: &mut wgpu::CommandEncoder) {
        let mut rest = self.ops.as_slice();
        while let Some(first) = rest.first() {
            match first {
                Op::Copy {
                    src,
                    src_offset,
                    dst,
                    dst_offset,
                    size,
                } => {
                    encoder.copy_buffer_to_buffer(src, *src_offset, dst, *dst_offset, *size);
                    rest = &rest[1..];
                }
                Op::Clear { buffer } => {
                    encoder.clear_buffer(buffer, 0, None);
                    rest = &rest[1..];
                }
                Op::Dispatch { .. } => {
                    let run = rest
                        .iter()
                        .take_while(|op| matches!(op, Op::Dispatch { .. }))
                        .count();
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("lstm forward"),
                        timestamp_writes: None,
                    });
                    for op in &rest[..run] {
                        if let Op::Dispatch {
                            kernel,
                            bind_group,
                            params_offset,
                            workgroups: [x, y, z],
                            ..
                        } = op
                        {
                            pass.set_pipeline(&pipelines.get(*kernel).pipeline);
                            pass.set_bind_group(0, bind_group, &[*params_offset]);
                            pass.dispatch_workgroups(*x, *y, *z);
                        }
                    }
                    rest = &rest[run..];
                }
            }
        }
    }
}
