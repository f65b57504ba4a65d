//! A GPU pass as data: the list of operations, and the one place that records them, either
//! into a caller's encoder or in chunks submitted one after another, so that the GPU runs a
//! chunk while the host records the next.

use std::iter::Peekable;

use crate::gpu::device::GpuContext;
use crate::gpu::kernels::Kernel;

/// A bound kernel: what one compute dispatch needs besides its dynamic offsets.
#[derive(Clone, Debug)]
pub struct Dispatch {
    pub kernel: Kernel,
    /// Which LSTM layer the dispatch belongs to.
    pub layer: usize,
    pub pipeline: wgpu::ComputePipeline,
    pub bind_group: wgpu::BindGroup,
    pub workgroups: [u32; 3],
}

/// One GPU operation of a plan.
#[derive(Clone, Debug)]
pub enum Op {
    /// One dispatch with its params slot (dynamic offset into the params buffer).
    Dispatch {
        dispatch: Dispatch,
        params_offset: u32,
    },
    /// `count` timesteps of the per-step kernels: for step i, each of `kernels` in order,
    /// with dynamic offsets `[params_offset, i * step_stride]` (the chunk's params slot and
    /// the step-index slot). One op however long the chunk, so plans stay small.
    Steps {
        kernels: Vec<Dispatch>,
        params_offset: u32,
        count: u32,
        step_stride: u32,
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

/// One dispatch of a profiled pass (`GpuLstm::profile_step`): its kernel, and the copies and
/// clears recorded between the previous dispatch and it.
#[derive(Clone, Debug)]
pub struct ProfiledDispatch {
    pub kernel: &'static str,
    pub transfers_before: usize,
    pub bytes_before: u64,
}

/// An ordered list of operations.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub ops: Vec<Op>,
}

/// Dispatches per submission when a plan is submitted in chunks: small at first, so the GPU
/// starts early, then larger, so submissions stay few.
const CHUNK_DISPATCHES: [usize; 5] = [16, 32, 64, 128, 256];

/// One recorded item: a dispatch with its dynamic offsets, or a copy/clear.
enum Item<'a> {
    Dispatch(&'a Dispatch, [u32; 2], usize),
    Transfer(&'a Op),
}

impl Plan {
    /// Dispatches of `kernel` (any layer).
    pub fn count(&self, kernel: Kernel) -> usize {
        self.dispatches().filter(|d| d.kernel == kernel).count()
    }

    /// Dispatches belonging to `layer`.
    pub fn count_in_layer(&self, layer: usize) -> usize {
        self.dispatches().filter(|d| d.layer == layer).count()
    }

    /// All dispatches.
    pub fn dispatch_count(&self) -> usize {
        self.dispatches().count()
    }

    fn dispatches(&self) -> impl Iterator<Item = &Dispatch> + '_ {
        self.items().filter_map(|item| match item {
            Item::Dispatch(d, ..) => Some(d),
            Item::Transfer(_) => None,
        })
    }

    fn items(&self) -> impl Iterator<Item = Item<'_>> + '_ {
        self.ops
            .iter()
            .flat_map(|op| -> Box<dyn Iterator<Item = Item<'_>> + '_> {
                match op {
                    Op::Dispatch {
                        dispatch,
                        params_offset,
                    } => Box::new(std::iter::once(Item::Dispatch(
                        dispatch,
                        [*params_offset, 0],
                        1,
                    ))),
                    Op::Steps {
                        kernels,
                        params_offset,
                        count,
                        step_stride,
                    } => Box::new((0..*count).flat_map(move |i| {
                        kernels
                            .iter()
                            .map(move |d| Item::Dispatch(d, [*params_offset, i * step_stride], 2))
                    })),
                    Op::Clear { .. } | Op::Copy { .. } => {
                        Box::new(std::iter::once(Item::Transfer(op)))
                    }
                }
            })
    }

    /// Records every operation into `encoder` (consecutive dispatches share one compute
    /// pass; copies go between passes). No CPU wait happens in here; submitting is the
    /// caller's choice.
    pub fn encode(&self, encoder: &mut wgpu::CommandEncoder) {
        self.encode_rebound(encoder, &[]);
    }

    /// [`Plan::encode`] with the copies that read or write a buffer of `rebind` (from, to)
    /// going to its replacement instead, at the same offsets: a pass whose state copies
    /// read and write a caller's state buffers in place.
    pub(crate) fn encode_rebound(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        rebind: &[(&wgpu::Buffer, &wgpu::Buffer)],
    ) {
        record(&mut self.items().peekable(), encoder, usize::MAX, rebind);
    }

    /// [`Plan::encode_rebound`] with each dispatch in its own compute pass, timestamped at
    /// its start and end (dispatch i at queries 2(first + i) and 2(first + i) + 1 of
    /// `queries`): the GPU time of every dispatch, and between them that of the copies and
    /// barriers. Returns, per dispatch, its kernel and the transfers recorded just before it,
    /// and last the transfers after the last dispatch (kernel "-").
    pub(crate) fn encode_profiled(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        rebind: &[(&wgpu::Buffer, &wgpu::Buffer)],
        queries: &wgpu::QuerySet,
        first: u32,
    ) -> Vec<ProfiledDispatch> {
        let mut parts = Vec::new();
        let (mut transfers, mut bytes) = (0, 0);
        for item in self.items() {
            match item {
                Item::Transfer(op) => {
                    transfer(encoder, op, rebind);
                    transfers += 1;
                    bytes += match op {
                        Op::Copy { size, .. } => *size,
                        _ => 0,
                    };
                }
                Item::Dispatch(d, offsets, n) => {
                    let at = 2 * (first + parts.len() as u32);
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("lstm (profiled)"),
                        timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                            query_set: queries,
                            beginning_of_pass_write_index: Some(at),
                            end_of_pass_write_index: Some(at + 1),
                        }),
                    });
                    pass.set_pipeline(&d.pipeline);
                    pass.set_bind_group(0, &d.bind_group, &offsets[..n]);
                    let [x, y, z] = d.workgroups;
                    pass.dispatch_workgroups(x, y, z);
                    parts.push(ProfiledDispatch {
                        kernel: d.kernel.name(),
                        transfers_before: std::mem::take(&mut transfers),
                        bytes_before: std::mem::take(&mut bytes),
                    });
                }
            }
        }
        parts.push(ProfiledDispatch {
            kernel: "-",
            transfers_before: transfers,
            bytes_before: bytes,
        });
        parts
    }

    /// Records and submits the plan in chunks (see `CHUNK_DISPATCHES`), so the GPU starts on
    /// the first chunk while the host records the rest. `first` and `last` add commands at
    /// the start of the first and the end of the last submission (timestamps, readbacks).
    pub fn submit(
        &self,
        ctx: &GpuContext,
        first: impl FnOnce(&mut wgpu::CommandEncoder),
        last: impl FnOnce(&mut wgpu::CommandEncoder),
    ) {
        let device = ctx.device();
        let new_encoder = || {
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("lstm plan chunk"),
            })
        };
        let mut items = self.items().peekable();
        let mut encoder = new_encoder();
        first(&mut encoder);
        for chunk in 0.. {
            let budget = CHUNK_DISPATCHES[chunk.min(CHUNK_DISPATCHES.len() - 1)];
            record(&mut items, &mut encoder, budget, &[]);
            if items.peek().is_none() {
                break;
            }
            ctx.submit([encoder.finish()]);
            encoder = new_encoder();
        }
        last(&mut encoder);
        ctx.submit([encoder.finish()]);
    }
}

/// Records items into `encoder` until `budget` dispatches are recorded or the items end;
/// copies go through `rebind` (see [`Plan::encode_rebound`]).
fn record<'a>(
    items: &mut Peekable<impl Iterator<Item = Item<'a>>>,
    encoder: &mut wgpu::CommandEncoder,
    budget: usize,
    rebind: &[(&wgpu::Buffer, &wgpu::Buffer)],
) {
    let mut recorded = 0;
    while let Some(item) = items.peek() {
        match item {
            Item::Transfer(op) => {
                transfer(encoder, op, rebind);
                items.next();
            }
            Item::Dispatch(..) => {
                if recorded >= budget {
                    return;
                }
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("lstm"),
                    timestamp_writes: None,
                });
                let mut current: Option<&wgpu::ComputePipeline> = None;
                while recorded < budget {
                    let Some(&Item::Dispatch(d, offsets, n)) = items.peek() else {
                        break;
                    };
                    if current != Some(&d.pipeline) {
                        pass.set_pipeline(&d.pipeline);
                        current = Some(&d.pipeline);
                    }
                    pass.set_bind_group(0, &d.bind_group, &offsets[..n]);
                    let [x, y, z] = d.workgroups;
                    pass.dispatch_workgroups(x, y, z);
                    items.next();
                    recorded += 1;
                }
            }
        }
    }
}

fn transfer(
    encoder: &mut wgpu::CommandEncoder,
    op: &Op,
    rebind: &[(&wgpu::Buffer, &wgpu::Buffer)],
) {
    let rebound = |buffer| {
        rebind
            .iter()
            .find(|(from, _)| *from == buffer)
            .map_or(buffer, |(_, to)| *to)
    };
    match op {
        Op::Copy {
            src,
            src_offset,
            dst,
            dst_offset,
            size,
        } => encoder.copy_buffer_to_buffer(
            rebound(src),
            *src_offset,
            rebound(dst),
            *dst_offset,
            *size,
        ),
        Op::Clear { buffer } => encoder.clear_buffer(buffer, 0, None),
        Op::Dispatch { .. } | Op::Steps { .. } => {}
    }
}
