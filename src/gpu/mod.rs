//! The GPU path: the only module that touches wgpu.
//!
//! Data flow of one forward pass, per layer (both directions together):
//! 1. `gemm`: `pre[T*B, D*4H] = x · W_ihᵀ + b_ih + b_hh` for all timesteps in one dispatch;
//! 2. `lstm_step` × T: the four gate matmuls with `h_{t-1}`, the nonlinearities and the cell
//!    update fused in one dispatch per timestep (plus `lstm_proj` per step with `proj_size`);
//! 3. copies of the final state into `h_n`/`c_n`.
//!
//! Everything is recorded into one encoder and submitted once.

mod adapters;
mod buffers;
mod builder;
mod context;
mod forward;
mod kernels;
mod layout;
mod model;
mod params;
mod plan;
mod train;
mod workspace;

pub use adapters::{enumerate_adapters, relevant_limits, AdapterSummary};
pub use context::GpuContext;
pub use kernels::{Kernel, GEMM_TILE, STEP_BATCH_TILE, WORKGROUP_SIZE};
pub use model::GpuLstm;
pub use plan::{Op, Plan};
pub use train::{GpuGradients, GpuTrainer};

/// Every WGSL file: (file stem, source), e.g. for validation with naga.
pub fn shader_sources() -> Vec<(&'static str, &'static str)> {
    kernels::SHADER_FILES.to_vec()
}
