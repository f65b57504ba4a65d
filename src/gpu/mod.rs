//! The GPU path: the only module that touches wgpu.
//!
//! Data flow of one forward pass, per layer (both directions together) and chunk of steps:
//! 1. `gemm`: `pre[steps, B, D*4H] = x · W_ihᵀ + b_ih + b_hh` for the chunk's steps (`gemv`,
//!    bitwise the same, when the chunk has at most 8 rows, as a streamed step);
//! 2. the recurrence, as [`Recurrence::choose`] picks it for the shape and device:
//!    `lstm_sequence` runs every step of the chunk in ONE dispatch (small H), `lstm_step`
//!    does the four gate matmuls with `h_{t-1}`, the nonlinearities and the cell update in one
//!    fused dispatch per step (plus `lstm_proj` per step with `proj_size`);
//! 3. copies of the final state into `h_n`/`c_n`.
//!
//! A plan is recorded and submitted in chunks, so the GPU starts while the host records.
//!
//! # Module map
//! Layers, lowest first; each imports only from the layers before it (tests/layers.rs):
//!
//! | layer | holds |
//! |---|---|
//! | `kernels` | pure data, no device: the kernel table (one row per kernel, bindings by name), the WGSL sources, params structs and their arena, grids and size checks, the recurrent variants and the choice table |
//! | `wisdom` | measured kernel choices without a device: what can be tuned for a shape, shape classes, the per-adapter wisdom file, the tuner's pick among timed candidates |
//! | `device` | wgpu plumbing with no LSTM knowledge: buffers, pipelines, [`GpuContext`] (with its kernel-choice policy, [`Tuning`]), error scopes, readback, timers, adapters |
//! | `plan` | a pass as data ([`internals::Plan`]) and the builder that binds it |
//! | `weights` | [`GpuWeights`]: PyTorch layouts re-laid out and uploaded once |
//! | `forward` | the forward pass, the state-slot rule, [`GpuLstm`], measuring a shape's kernel choices ([`tune_forward`]) |
//! | `stream` | [`GpuState`], the streaming calls of [`GpuLstm`], [`GpuStatePool`] |
//! | `train` | [`GpuTrainer`]: loss, backward, weight gradients, optimizers, measuring a training step's choices ([`tune_training`]) |

mod device;
mod forward;
#[allow(missing_docs)] // internals: re-exported hidden, for tests and benches
mod kernels;
#[allow(missing_docs)] // internals: re-exported hidden, for tests and benches
mod plan;
mod stream;
mod train;
mod weights;
pub mod wisdom;

#[cfg(not(target_arch = "wasm32"))]
pub use device::enumerate_adapters;
#[cfg(feature = "fault-hooks")]
pub use device::fault_hooks;
pub use device::{
    enumerate_adapters_async, relevant_limits, AdapterSummary, ContextOptions, GpuContext, Tuning,
    DEFAULT_TIMEOUT, MAX_CHUNK_STEPS,
};
#[cfg(not(target_arch = "wasm32"))]
pub use forward::{tune_forward, MEASURE_BUDGET};
pub use forward::{GpuLstm, PREPARED_SHAPES};
pub use kernels::{DeviceCaps, KernelChoice, Recurrence, RecurrentShape, SequenceTiles, StepTiles};
pub use stream::{GpuState, GpuStatePool, SlotState};
#[cfg(not(target_arch = "wasm32"))]
pub use train::tune_training;
pub use train::{GpuGradients, GpuTrainer};
pub use weights::GpuWeights;

/// Test-only hooks: the kernel table, plans, params sizes and tile maxima, public for the
/// tests and benches only. Not part of the API: they change without notice.
#[doc(hidden)]
pub mod internals {
    pub use super::kernels::{
        params_sizes, shader_builds, Binding, BindingKind, Kernel, KernelSpec, ShaderBuild,
        BACKWARD_MAX_ROWS, GEMM_TILE, KERNELS, SEQUENCE_MAX_PER_INVOCATION,
        SEQUENCE_MAX_STEPS_STAGED, SHADER_FILES, STEP_MAX_QUADS, STEP_MAX_ROWS, WORKGROUP_SIZE,
    };
    pub use super::plan::{Dispatch, Op, Plan, ProfiledDispatch};
    pub use super::stream::StepProfile;
}
