//! A persistently mapped upload buffer for the host-level forward: the host writes the input
//! straight into mapped memory, the GPU copies it into place, and the buffer is mapped again
//! behind that copy, ready for the next call. Unlike `queue.write_buffer`, no staging memory
//! is allocated (and first touched) per call, which matters for inputs of megabytes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};

pub(crate) struct Upload {
    buffer: wgpu::Buffer,
    /// set by the map callback; the buffer may be written while it is true
    mapped: Arc<AtomicBool>,
    /// a mapping has been asked for and has not arrived
    pending: AtomicBool,
}

impl Upload {
    /// `bytes` (a multiple of 4) of upload space, mapped from the start.
    pub fn new(device: &wgpu::Device, label: &str, bytes: u64) -> Self {
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: true,
        });
        Self {
            buffer,
            mapped: Arc::new(AtomicBool::new(true)),
            pending: AtomicBool::new(false),
        }
    }

    /// Writes `data` at the start of the buffer (waiting for the mapping if the last copy
    /// out of it has not finished) and unmaps it for the GPU.
    pub fn write(&self, device: &wgpu::Device, data: &[u8]) -> Result<()> {
        if !self.mapped.load(Ordering::Acquire) {
            if !self.pending.load(Ordering::Acquire) {
                self.remap();
            }
            device
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| Error::Readback(e.to_string()))?;
            if !self.mapped.load(Ordering::Acquire) {
                return Err(Error::Readback(
                    "the upload buffer could not be mapped".into(),
                ));
            }
        }
        {
            let mut view = self
                .buffer
                .get_mapped_range_mut(..data.len() as u64)
                .map_err(|e| Error::Readback(e.to_string()))?;
            view.copy_from_slice(data);
        }
        self.mapped.store(false, Ordering::Release);
        self.pending.store(false, Ordering::Release);
        self.buffer.unmap();
        Ok(())
    }

    /// Records the copy of the first `bytes` into `dst`.
    pub fn copy_to(&self, encoder: &mut wgpu::CommandEncoder, dst: &wgpu::Buffer, bytes: u64) {
        encoder.copy_buffer_to_buffer(&self.buffer, 0, dst, 0, bytes);
    }

    /// Asks for the mapping back; it arrives once the submitted copy has run.
    pub fn remap(&self) {
        self.pending.store(true, Ordering::Release);
        let mapped = self.mapped.clone();
        self.buffer
            .slice(..)
            .map_async(wgpu::MapMode::Write, move |result| {
                mapped.store(result.is_ok(), Ordering::Release);
            });
    }
}
