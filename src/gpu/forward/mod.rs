//! The forward pass. Per layer and chunk of steps: the input projection (one gemm), then the
//! recurrent steps: ONE dispatch for the whole chunk with the sequence kernel (small H), or
//! one fused dispatch per step with the per-step kernel (two with a projection). Then the
//! head's gemm.
//!
//! Inference keeps two rolling h slots and shares buffers between layers (the slot rule:
//! `slots.rs` here, `lstm_common.wgsl` on the GPU). Training (`cache`) keeps every layer's
//! output and every state, gate activation and h_full by time, for the backward pass; its
//! input and output are always time-major.
//!
//! Files, lowest first: `slots`, `buffers`, `chunks`, `layer`, `pass` (the whole pass as a
//! plan), `workspace` (one prepared shape), `model` ([`GpuLstm`]), `tune` (measuring the
//! kernel choices of a shape).

mod buffers;
mod chunks;
mod layer;
mod model;
mod pass;
mod slots;
#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod tune;
mod workspace;

pub(crate) use buffers::ForwardBuffers;
pub use model::{GpuLstm, PREPARED_SHAPES};
pub(crate) use pass::{build_forward_with, ForwardOptions};
#[cfg(not(target_arch = "wasm32"))]
pub use tune::{tune_forward, MEASURE_BUDGET};
