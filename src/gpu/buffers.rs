//! Buffer creation and readback helpers.

use super::context::GpuContext;
use super::guard::{guarded, note_allocation};
use crate::error::{Error, Result};

/// A labelled buffer of `size` bytes (noted for out-of-memory errors, see
/// [`super::guard`]). Larger than the device's `max_buffer_size`, it is invalid and the
/// call's error scopes report it as out of memory.
pub fn buffer(
    device: &wgpu::Device,
    label: &str,
    size: u64,
    usage: wgpu::BufferUsages,
) -> wgpu::Buffer {
    note_allocation(label, size);
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size,
        usage,
        mapped_at_creation: false,
    })
}

/// A labelled buffer holding `bytes` (padded to 4), mapped at creation and filled there.
/// Unlike wgpu's `create_buffer_init`, an invalid buffer (too large, device lost) is left
/// to the error scopes instead of panicking.
fn buffer_init(
    device: &wgpu::Device,
    label: &str,
    size: u64,
    usage: wgpu::BufferUsages,
    fill: impl FnOnce(&mut wgpu::BufferViewMut),
) -> wgpu::Buffer {
    let size = size.max(4).next_multiple_of(4);
    note_allocation(label, size);
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size,
        usage,
        mapped_at_creation: true,
    });
    if size <= device.limits().max_buffer_size {
        if let Ok(mut view) = buffer.get_mapped_range_mut(..) {
            fill(&mut view);
        }
    }
    buffer.unmap();
    buffer
}

const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);

/// A labelled storage buffer initialised from `data` (at least 4 bytes, as wgpu requires
/// non-empty bindings).
pub fn storage_init<T: bytemuck::Pod>(
    device: &wgpu::Device,
    label: &str,
    data: &[T],
) -> wgpu::Buffer {
    let bytes: &[u8] = bytemuck::cast_slice(data);
    buffer_init(device, label, bytes.len() as u64, STORAGE, |view| {
        view.slice(..bytes.len()).copy_from_slice(bytes)
    })
}

/// A labelled storage buffer of `len` (at least 1) zeros, f32 or u32 (wgpu zeroes new
/// buffers; nothing is allocated on the host).
pub fn storage_zeros(device: &wgpu::Device, label: &str, len: usize) -> wgpu::Buffer {
    let bytes = (len.max(1) as u64).saturating_mul(4);
    buffer(device, label, bytes, STORAGE)
}

/// A labelled storage buffer of `len` f32 elements, every one NaN, so that an element a
/// kernel never writes shows up in any comparison.
pub fn storage_nan(device: &wgpu::Device, label: &str, len: usize) -> wgpu::Buffer {
    let bytes = (len.max(1) as u64).saturating_mul(4);
    buffer_init(device, label, bytes, STORAGE, |view| {
        let nan: Vec<u8> = f32::NAN.to_ne_bytes().repeat(1 << 14);
        let len = view.len();
        for at in (0..len).step_by(nan.len()) {
            let n = nan.len().min(len - at);
            view.slice(at..at + n).copy_from_slice(&nan[..n]);
        }
    })
}

/// A labelled uniform buffer initialised from `bytes`.
pub fn uniform_init(device: &wgpu::Device, label: &str, bytes: &[u8]) -> wgpu::Buffer {
    let usage = wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST;
    buffer_init(device, label, bytes.len() as u64, usage, |view| {
        view.slice(..bytes.len()).copy_from_slice(bytes)
    })
}

/// A mappable buffer to copy results into for reading on the host.
pub fn staging(device: &wgpu::Device, label: &str, len: usize) -> wgpu::Buffer {
    let usage = wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST;
    buffer(device, label, (len.max(1) as u64).saturating_mul(4), usage)
}

/// Maps every buffer and returns the first `len` f32 of each once the GPU is done. On native
/// backends this polls the device (for at most the context's timeout); on the web the
/// browser drives the mapping.
pub async fn read_f32_async(
    ctx: &GpuContext,
    buffers: &[(&wgpu::Buffer, usize)],
) -> Result<Vec<Vec<f32>>> {
    let ranges: Vec<_> = buffers
        .iter()
        .map(|(b, len)| (*b, (*len as u64) * 4))
        .collect();
    let bytes = read_bytes_async(ctx, "readback", &ranges, None).await?;
    let mut out = Vec::with_capacity(bytes.len());
    for b in bytes {
        out.push(bytemuck::pod_collect_to_vec::<u8, f32>(&b));
    }
    Ok(out)
}

/// Maps the first `bytes` of every buffer, waits (for `submission`, else all work) at most
/// the context's timeout, and copies them out. On a timeout the pending maps are cancelled,
/// so that the buffers can be used again; a lost device is [`Error::DeviceLost`].
pub(crate) async fn read_bytes_async(
    ctx: &GpuContext,
    during: &'static str,
    buffers: &[(&wgpu::Buffer, u64)],
    submission: Option<wgpu::SubmissionIndex>,
) -> Result<Vec<Vec<u8>>> {
    ctx.check_alive(during)?;
    let mut receivers = Vec::new();
    for (buffer, bytes) in buffers {
        let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
        buffer
            .slice(..*bytes)
            .map_async(wgpu::MapMode::Read, move |result| {
                sender.send(result).ok();
            });
        receivers.push(receiver);
    }
    if let Err(e) = ctx.wait(during, submission) {
        for (buffer, _) in buffers {
            buffer.unmap();
        }
        return Err(e);
    }
    let mut out = Vec::new();
    for ((buffer, bytes), receiver) in buffers.iter().zip(receivers) {
        mapped(ctx, during, receiver.receive().await)?;
        let data = {
            let view = buffer
                .get_mapped_range(..*bytes)
                .map_err(|e| Error::Readback(e.to_string()))?;
            let mut data = crate::host::try_with_capacity(during, view.len())?;
            data.extend_from_slice(&view);
            data
        };
        buffer.unmap();
        out.push(data);
    }
    Ok(out)
}

/// The outcome of a `map_async` callback as this crate's error: a lost device first.
pub(crate) fn mapped(
    ctx: &GpuContext,
    during: &'static str,
    outcome: Option<std::result::Result<(), wgpu::BufferAsyncError>>,
) -> Result<()> {
    ctx.check_alive(during)?;
    match outcome {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(Error::Readback(format!("{during}: {e}"))),
        None => Err(Error::Readback(format!("{during}: map callback dropped"))),
    }
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
    let submission = guarded(ctx, during, || {
        let mut encoder = ctx
            .device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some(during),
            });
        record(&mut encoder)?;
        Ok(ctx.queue().submit([encoder.finish()]))
    })
    .await?;
    let bytes = read_bytes_async(ctx, during, &[(stage, len as u64 * 4)], Some(submission)).await?;
    Ok(bytemuck::pod_collect_to_vec::<u8, f32>(&bytes[0]))
}
