//! Streams: recurrent state kept on the GPU between calls. [`GpuState`] holds a batch of
//! streams' state, `stepping.rs` adds the calls of [`crate::gpu::GpuLstm`] that advance it,
//! and [`GpuStatePool`] keeps many independent streams of one model in the slots of a pool.

mod pool;
mod state;
mod stepping;

pub use pool::{GpuStatePool, SlotState};
pub use state::GpuState;
#[doc(hidden)]
pub use stepping::StepProfile;
