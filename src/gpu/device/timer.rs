//! GPU time from timestamp queries (where the device has TIMESTAMP_QUERY): a timestamp
//! before the first and after the last command of a pass of work, written by two empty
//! compute passes, so the span covers every submission in between; or of each of several
//! spans (the dispatches of a profiled step).

use super::alloc::buffer;
use super::context::GpuContext;
use super::readback::read_bytes_async;
use crate::error::Result;

/// The GPU time of a pass of work: a [`PartTimer`] of two marks, one before the work and
/// one after it.
pub(crate) struct GpuTimer(PartTimer);

impl GpuTimer {
    /// `None` when the device cannot write timestamps.
    pub fn new(ctx: &GpuContext) -> Option<Self> {
        PartTimer::new(ctx, 2).map(Self)
    }

    /// The start mark: record before the work.
    pub fn start(&self, encoder: &mut wgpu::CommandEncoder) {
        self.0.mark(encoder, 0);
    }

    /// The end mark and the resolve: record after the work.
    pub fn stop(&self, encoder: &mut wgpu::CommandEncoder) {
        self.0.mark(encoder, 1);
        self.0.resolve(encoder, 2);
    }

    /// Milliseconds from the start mark to the end mark; call after the submission with
    /// `stop` (e.g. after a readback waited for it).
    pub async fn read_ms_async(&self, ctx: &GpuContext) -> Result<f64> {
        let spans = self.0.read_us_async(ctx, 2).await?;
        Ok(spans[1].1 / 1e3)
    }
}

/// GPU time of each of `parts` timestamped spans (two queries each, see
/// [`super::plan::Plan::encode_profiled`]): start and end of every span in µs from the first
/// start.
pub(crate) struct PartTimer {
    queries: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    staging: wgpu::Buffer,
    parts: u32,
}

impl PartTimer {
    /// `None` when the device cannot write timestamps.
    pub fn new(ctx: &GpuContext, parts: u32) -> Option<Self> {
        if !ctx.has_timestamps() || parts == 0 {
            return None;
        }
        let device = ctx.device();
        let bytes = 16 * parts as u64;
        Some(Self {
            queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("part times"),
                ty: wgpu::QueryType::Timestamp,
                count: 2 * parts,
            }),
            resolved: buffer(
                device,
                "part times resolve",
                bytes,
                wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            ),
            staging: buffer(
                device,
                "part times readback",
                bytes,
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            ),
            parts,
        })
    }

    pub fn queries(&self) -> &wgpu::QuerySet {
        &self.queries
    }

    /// An empty compute pass timestamped as span `span`: a mark in the command stream.
    pub fn mark(&self, encoder: &mut wgpu::CommandEncoder, span: u32) {
        encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("part time mark"),
            timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                query_set: &self.queries,
                beginning_of_pass_write_index: Some(2 * span),
                end_of_pass_write_index: Some(2 * span + 1),
            }),
        });
    }

    /// Resolves the timestamps of the first `parts` spans: record after them.
    pub fn resolve(&self, encoder: &mut wgpu::CommandEncoder, parts: u32) {
        let parts = parts.min(self.parts);
        encoder.resolve_query_set(&self.queries, 0..2 * parts, &self.resolved, 0);
        encoder.copy_buffer_to_buffer(&self.resolved, 0, &self.staging, 0, 16 * parts as u64);
    }

    /// (start, end) of each of the first `parts` spans in µs from the first start; call after
    /// the submission with `resolve`.
    pub async fn read_us_async(&self, ctx: &GpuContext, parts: u32) -> Result<Vec<(f64, f64)>> {
        let parts = parts.min(self.parts);
        let read = read_bytes_async(
            ctx,
            "reading part times",
            &[(&self.staging, 16 * parts as u64)],
            None,
        )
        .await?;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&read[0]);
        let period_us = ctx.queue().get_timestamp_period() as f64 / 1e3;
        let first = ticks.first().copied().unwrap_or(0);
        let us = |t: u64| t.saturating_sub(first) as f64 * period_us;
        Ok(ticks.chunks(2).map(|p| (us(p[0]), us(p[1]))).collect())
    }
}
