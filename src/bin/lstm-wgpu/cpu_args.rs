//! The CPU flags every command with `--device cpu` shares.

use lstm_wgpu::cpu::{check_threads, default_threads};
use lstm_wgpu::Result;

#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct CpuArgs {
    /// CPU threads for --device cpu (default: every core)
    #[arg(long)]
    pub threads: Option<usize>,
}

impl CpuArgs {
    /// The thread count: the flag's, checked, or every core.
    pub fn threads(self) -> Result<usize> {
        self.threads.map_or(Ok(default_threads()), check_threads)
    }
}
