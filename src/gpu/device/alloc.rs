//! Buffer creation: every buffer labelled and noted (for out-of-memory errors), and none
//! through wgpu's `create_buffer_init`, which panics on a lost device.

use super::allocations::note_allocation;

/// A labelled buffer of `size` bytes (noted for out-of-memory errors, see
/// `guard.rs`). Larger than the device's `max_buffer_size`, it is invalid and the
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
