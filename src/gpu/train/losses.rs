//! The loss of a training step (and, for cross-entropy, the rows it classified right), read
//! back while the next step runs: two staging buffers used in turn (step k copies its scalars
//! into buffer k % 2), each mapped behind the submission that wrote it. Nothing is allocated
//! per step.

use std::collections::VecDeque;

use futures_intrusive::channel::shared::{oneshot_channel, OneshotReceiver};

use crate::error::{Error, Result};
use crate::gpu::device::{buffer, mapped, GpuContext};
use crate::train::StepLoss;

struct InFlight {
    step: u64,
    /// cross-entropy: the rows the loss counts (the accuracy's denominator)
    counted: Option<usize>,
    submission: wgpu::SubmissionIndex,
    mapped: OneshotReceiver<std::result::Result<(), wgpu::BufferAsyncError>>,
}

pub(super) struct LossRing {
    stages: [wgpu::Buffer; 2],
    in_flight: VecDeque<InFlight>,
}

impl LossRing {
    pub fn new(device: &wgpu::Device) -> Self {
        Self {
            stages: [0, 1].map(|i| {
                let usage = wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST;
                buffer(device, &format!("loss readback {i}"), 8, usage)
            }),
            in_flight: VecDeque::new(),
        }
    }

    /// Where step `step` copies its loss (free: the loss of step - 2 has been read).
    fn stage(&self, step: u64) -> &wgpu::Buffer {
        &self.stages[(step % 2) as usize]
    }

    /// Records step `step`'s copies of its loss (`scalars[0]`) and its rows classified right
    /// (`scalars[hits]`) into its stage.
    pub fn record_copy(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        scalars: &wgpu::Buffer,
        step: u64,
        hits: u32,
    ) {
        let stage = self.stage(step);
        encoder.copy_buffer_to_buffer(scalars, 0, stage, 0, 4);
        encoder.copy_buffer_to_buffer(scalars, hits as u64 * 4, stage, 4, 4);
    }

    /// Step `step`, which recorded [`LossRing::record_copy`], went out as `submission`;
    /// `counted` rows make its accuracy (cross-entropy only).
    pub fn submitted(
        &mut self,
        step: u64,
        submission: wgpu::SubmissionIndex,
        counted: Option<usize>,
    ) {
        let (sender, mapped) = oneshot_channel();
        self.stage(step)
            .slice(..)
            .map_async(wgpu::MapMode::Read, move |r| {
                sender.send(r).ok();
            });
        self.in_flight.push_back(InFlight {
            step,
            counted,
            submission,
            mapped,
        });
    }

    /// Waits (at most the context's timeout each) for the oldest steps until at most `keep`
    /// are in flight; their scores, in order. On an error the steps still in flight
    /// are given up and their maps cancelled, so that the ring can be used again.
    pub async fn drain(&mut self, ctx: &GpuContext, keep: usize) -> Result<Vec<StepLoss>> {
        let drained = self.drain_inner(ctx, keep).await;
        if drained.is_err() {
            for stage in &self.stages {
                stage.unmap();
            }
            self.in_flight.clear();
        }
        drained
    }

    async fn drain_inner(&mut self, ctx: &GpuContext, keep: usize) -> Result<Vec<StepLoss>> {
        let mut losses = Vec::new();
        while self.in_flight.len() > keep {
            let Some(oldest) = self.in_flight.pop_front() else {
                break;
            };
            ctx.wait("training step", Some(oldest.submission))?;
            mapped(ctx, "training step", oldest.mapped.receive().await)?;
            let stage = self.stage(oldest.step);
            let [loss, hits] = {
                let view = stage
                    .get_mapped_range(..)
                    .map_err(|e| Error::Readback(e.to_string()))?;
                bytemuck::pod_read_unaligned::<[f32; 2]>(&view[..8])
            };
            stage.unmap();
            losses.push(StepLoss {
                step: oldest.step,
                loss,
                accuracy: oldest.counted.map(|n| hits / n.max(1) as f32),
            });
        }
        Ok(losses)
    }
}
