//! The loss of a training step, read back while the next step runs: two staging buffers used
//! in turn (step k copies its loss into buffer k % 2), each mapped behind the submission that
//! wrote it. Nothing is allocated per step.

use std::collections::VecDeque;

use futures_intrusive::channel::shared::{oneshot_channel, OneshotReceiver};

use crate::error::{Error, Result};
use crate::gpu::device::{buffer, mapped, GpuContext};

struct InFlight {
    step: u64,
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
                buffer(device, &format!("loss readback {i}"), 4, usage)
            }),
            in_flight: VecDeque::new(),
        }
    }

    /// Where step `step` copies its loss (free: the loss of step - 2 has been read).
    pub fn stage(&self, step: u64) -> &wgpu::Buffer {
        &self.stages[(step % 2) as usize]
    }

    /// Step `step`, which copied its loss into [`LossRing::stage`], went out as `submission`.
    pub fn submitted(&mut self, step: u64, submission: wgpu::SubmissionIndex) {
        let (sender, mapped) = oneshot_channel();
        self.stage(step)
            .slice(..)
            .map_async(wgpu::MapMode::Read, move |r| {
                sender.send(r).ok();
            });
        self.in_flight.push_back(InFlight {
            step,
            submission,
            mapped,
        });
    }

    /// Waits (at most the context's timeout each) for the oldest steps until at most `keep`
    /// are in flight; their (step, loss), in order. On an error the steps still in flight
    /// are given up and their maps cancelled, so that the ring can be used again.
    pub async fn drain(&mut self, ctx: &GpuContext, keep: usize) -> Result<Vec<(u64, f32)>> {
        let drained = self.drain_inner(ctx, keep).await;
        if drained.is_err() {
            for stage in &self.stages {
                stage.unmap();
            }
            self.in_flight.clear();
        }
        drained
    }

    async fn drain_inner(&mut self, ctx: &GpuContext, keep: usize) -> Result<Vec<(u64, f32)>> {
        let mut losses = Vec::new();
        while self.in_flight.len() > keep {
            let Some(oldest) = self.in_flight.pop_front() else {
                break;
            };
            ctx.wait("training step", Some(oldest.submission))?;
            mapped(ctx, "training step", oldest.mapped.receive().await)?;
            let stage = self.stage(oldest.step);
            let loss = {
                let view = stage
                    .get_mapped_range(..)
                    .map_err(|e| Error::Readback(e.to_string()))?;
                bytemuck::pod_read_unaligned::<f32>(&view[..4])
            };
            stage.unmap();
            losses.push((oldest.step, loss));
        }
        Ok(losses)
    }
}
