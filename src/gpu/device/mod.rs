//! wgpu plumbing with no LSTM knowledge: buffers, pipelines, the context, error scopes,
//! readback and timers. Each file imports only those before it in this order (tests/layers.rs
//! reads the line below and checks):
//!
//! Order: sync, ready, fault_hooks, allocations, alloc, pipelines, adapters, tuning, context, drop_turn, guard, readback, timer

mod adapters;
mod alloc;
mod allocations;
mod context;
mod drop_turn;
#[cfg(feature = "fault-hooks")]
pub mod fault_hooks;
mod guard;
mod pipelines;
mod readback;
mod ready;
mod sync;
mod timer;
mod tuning;

#[cfg(not(target_arch = "wasm32"))]
pub use adapters::enumerate_adapters;
pub use adapters::{enumerate_adapters_async, relevant_limits, AdapterSummary};
pub(crate) use alloc::{buffer, staging, storage_init, storage_nan, storage_zeros, uniform_init};
pub(crate) use context::caps_of;
pub use context::{ContextOptions, GpuContext, DEFAULT_TIMEOUT, MAX_CHUNK_STEPS};
pub(crate) use drop_turn::{drop_turn, TurnEnd, TurnStart};
pub(crate) use guard::{guarded, guarded_now, Scopes};
pub(crate) use pipelines::Constants;
pub(crate) use readback::{mapped, read_bytes_async, read_f32_async, submit_and_read};
pub(crate) use sync::lock;
pub(crate) use timer::{GpuTimer, PartTimer};
pub use tuning::Tuning;
