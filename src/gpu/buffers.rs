//! Buffer creation and readback helpers.

use wgpu::util::DeviceExt;

use super::context::GpuContext;
use crate::error::{Error, Result};

/// A labelled storage buffer initialised from `data` (at least 4 bytes, as wgpu requires
/// non-empty bindings).
pub fn storage_init<T: bytemuck::Pod>(
    device: &wgpu::Device,
    label: &str,
    data: &[T],
) -> wgpu::Buffer {
    let bytes: &[u8] = bytemuck::cast_slice(data);
    let contents: &[u8] = if bytes.is_empty() { &[0; 4] } else { bytes };
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC,
    })
}

/// A labelled storage buffer of `len` f32 elements, every one NaN, so that an element a
/// kernel never writes shows up in any comparison.
pub fn storage_nan(device: &wgpu::Device, label: &str, len: usize) -> wgpu::Buffer {
    storage_init(device, label, &vec![f32::NAN; len.max(1)])
}

/// A labelled uniform buffer initialised from `bytes`.
pub fn uniform_init(device: &wgpu::Device, label: &str, bytes: &[u8]) -> wgpu::Buffer {
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytes,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
    })
}

/// A mappable buffer to copy results into for reading on the host.
pub fn staging(device: &wgpu::Device, label: &str, len: usize) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (len.max(1) * 4) as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// Maps every buffer, waits for the GPU, and returns the first `len` f32 of each (blocks;
/// see [`read_f32_async`]).
pub fn read_f32(
    device: &wgpu::Device,
    buffers: &[(&wgpu::Buffer, usize)],
) -> Result<Vec<Vec<f32>>> {
    pollster::block_on(read_f32_async(device, buffers))
}

/// Maps every buffer and returns the first `len` f32 of each once the GPU is done. On native
/// backends this polls the device until then; on the web the browser drives the mapping.
pub async fn read_f32_async(
    device: &wgpu::Device,
    buffers: &[(&wgpu::Buffer, usize)],
) -> Result<Vec<Vec<f32>>> {
    let mut receivers = Vec::new();
    for (buffer, len) in buffers {
        let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
        buffer
            .slice(..(*len * 4) as u64)
            .map_async(wgpu::MapMode::Read, move |result| {
                sender.send(result).ok();
            });
        receivers.push(receiver);
    }
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::Readback(e.to_string()))?;
    let mut out = Vec::new();
    for ((buffer, len), receiver) in buffers.iter().zip(receivers) {
        match receiver.receive().await {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(Error::Readback(e.to_string())),
            None => return Err(Error::Readback("map callback dropped".into())),
        }
        let range = (*len * 4) as u64;
        let data = {
            let view = buffer
                .get_mapped_range(..range)
                .map_err(|e| Error::Readback(e.to_string()))?;
            bytemuck::cast_slice::<u8, f32>(&view).to_vec()
        };
        buffer.unmap();
        out.push(data);
    }
    Ok(out)
}

/// Records into a fresh encoder with `record`, which leaves its result in `stage`; submits,
/// and returns the first `len` f32 of `stage`. A validation error in between is
/// `Error::Gpu { during }`.
pub(crate) async fn submit_and_read(
    ctx: &GpuContext,
    during: &'static str,
    stage: &wgpu::Buffer,
    len: usize,
    record: impl FnOnce(&mut wgpu::CommandEncoder) -> Result<()>,
) -> Result<Vec<f32>> {
    let device = ctx.device();
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some(during),
    });
    record(&mut encoder)?;
    ctx.queue().submit([encoder.finish()]);
    if let Some(source) = scope.pop().await {
        return Err(Error::Gpu { during, source });
    }
    read_f32_async(device, &[(stage, len)])
        .await?
        .pop()
        .ok_or_else(|| Error::Readback("expected one buffer".into()))
}
