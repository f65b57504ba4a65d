//! Kernels as data, with no device: the kernel table and its WGSL sources, the params structs
//! and their arena, grid sizes and size checks, the recurrent variants and the table that
//! chooses one.

mod backward_tiles;
mod builds;
mod cell;
mod choice;
mod params;
mod recurrence;
mod sizes;
mod sources;
mod table;

pub use backward_tiles::{BackwardTiles, BACKWARD_MAX_ROWS};
pub use builds::{pipeline_label, shader_builds, ShaderBuild};
pub use cell::cell_constants;
pub use choice::{KernelChoice, SEQUENCE_MAX_STEPS_STAGED};
pub use params::*;
pub use recurrence::{
    DeviceCaps, Recurrence, RecurrentShape, SequenceTiles, StepTiles, SEQUENCE_MAX_PER_INVOCATION,
    STEP_MAX_QUADS, STEP_MAX_ROWS,
};
pub(crate) use sizes::*;
pub use sources::SHADER_FILES;
pub use table::{Binding, BindingKind, Kernel, KernelSpec, GEMM_TILE, KERNELS, WORKGROUP_SIZE};
