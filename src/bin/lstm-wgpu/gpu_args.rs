//! The GPU flags every GPU command shares.

use lstm_wgpu::gpu::{ContextOptions, GpuContext};
use lstm_wgpu::Result;

#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct GpuArgs {
    /// Request WebGPU's default limits instead of the adapter's own (browser parity)
    #[arg(long)]
    pub webgpu_limits: bool,
}

impl GpuArgs {
    pub fn context(self) -> Result<GpuContext> {
        GpuContext::with_options(ContextOptions {
            webgpu_limits: self.webgpu_limits,
            ..Default::default()
        })
    }
}
