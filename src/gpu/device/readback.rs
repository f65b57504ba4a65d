//! Reading buffers back to the host: map, wait at most the context's timeout, copy out; a
//! lost device or a timeout is an error, and the pending maps are cancelled.

use super::context::GpuContext;
use super::guard::guarded;
use crate::error::{Error, Result};

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
    {
        // the maps, the wait and the unmaps in the device's turn, none held across an await
        let _turn = ctx.device_turn();
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
    }
    let mut out = Vec::new();
    for ((buffer, bytes), receiver) in buffers.iter().zip(receivers) {
        mapped(ctx, during, receiver.receive().await)?;
        let _turn = ctx.device_turn();
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
        Ok(ctx.submit([encoder.finish()]))
    })
    .await?;
    let bytes = read_bytes_async(ctx, during, &[(stage, len as u64 * 4)], Some(submission)).await?;
    Ok(bytemuck::pod_collect_to_vec::<u8, f32>(&bytes[0]))
}
