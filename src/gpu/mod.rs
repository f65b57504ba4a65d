//! The GPU path: the only module that touches wgpu.
//!
//! Data flow of one forward pass, per layer (both directions together) and chunk of steps:
//! 1. `gemm`: `pre[steps, B, D*4H] = x · W_ihᵀ + b_ih + b_hh` for the chunk's steps (`gemv`,
//!    bitwise the same, when the chunk has at most 8 rows, as a streamed step);
//! 2. the recurrence, by the variant [`StepVariant::choose`] picks for the shape and device:
//!    `lstm_sequence` runs every step of the chunk in ONE dispatch (small H), `lstm_step`
//!    does the four gate matmuls with `h_{t-1}`, the nonlinearities and the cell update in one
//!    fused dispatch per step (plus `lstm_proj` per step with `proj_size`);
//! 3. copies of the final state into `h_n`/`c_n`.
//!
//! A plan is recorded and submitted in chunks, so the GPU starts while the host records.

mod adapters;
mod buffers;
mod builder;
mod choice;
mod context;
mod forward;
mod guard;
#[allow(missing_docs)] // internals: re-exported hidden, for tests and benches
mod kernels;
mod layout;
mod model;
mod params;
mod pipelines;
#[allow(missing_docs)] // internals: re-exported hidden, for tests and benches
mod plan;
mod pool;
mod resident;
mod sizes;
mod slots;
mod state;
mod timer;
mod train;
mod variant;
mod workspace;

pub use adapters::{enumerate_adapters, enumerate_adapters_async, relevant_limits, AdapterSummary};
pub use choice::{KernelChoice, SEQUENCE_MAX_STEPS_STAGED};
pub use context::{ContextOptions, GpuContext, DEFAULT_TIMEOUT, MAX_CHUNK_STEPS};
#[doc(hidden)] // the kernels and plans are internals, public for the tests and benches only
pub use kernels::Kernel;
pub use kernels::{GEMM_TILE, WORKGROUP_SIZE};
pub use model::{GpuLstm, PREPARED_SHAPES};
pub use params::params_sizes;
#[doc(hidden)]
pub use plan::{Dispatch, Op, Plan, ProfiledDispatch};
pub use pool::{GpuStatePool, SlotState};
pub use resident::GpuWeights;
pub use state::GpuState;
pub use train::{GpuGradients, GpuTrainer, BACKWARD_MAX_ROWS};
pub use variant::{
    DeviceCaps, SequenceTiles, StepShape, StepTiles, StepVariant, SEQUENCE_MAX_PER_INVOCATION,
    STEP_MAX_QUADS, STEP_MAX_ROWS,
};

/// Every WGSL file: (file stem, the source a pipeline is built from), e.g. for validation
/// with naga.
pub fn shader_sources() -> Vec<(&'static str, &'static str)> {
    kernels::SHADER_FILES.to_vec()
}
