//! The loss of a training step, read back while the next step runs: two staging buffers used
//! in turn (step k copies its loss into buffer k % 2), each mapped behind the submission that
//! wrote it. Nothing is allocated per step.

use std::collections::VecDeque;

use futures_intrusive::channel::shared::{oneshot_channel, OneshotReceiver};

use crate::error::{Error, Result};

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
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("loss readback {i}")),
                    size: 4,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
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

    /// Waits for the oldest steps until at most `keep` are in flight; their (step, loss), in
    /// order.
    pub fn drain(&mut self, device: &wgpu::Device, keep: usize) -> Result<Vec<(u64, f32)>> {
        let mut losses = Vec::new();
        while self.in_flight.len() > keep {
            let Some(oldest) = self.in_flight.pop_front() else {
                break;
            };
            device
                .poll(wgpu::PollType::Wait {
                    submission_index: Some(oldest.submission),
                    timeout: None,
                })
                .map_err(|e| Error::Readback(e.to_string()))?;
            match pollster::block_on(oldest.mapped.receive()) {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(Error::Readback(e.to_string())),
                None => return Err(Error::Readback("loss map callback dropped".into())),
            }
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
