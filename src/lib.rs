//! # lstm-wgpu
//!
//! PyTorch-exact LSTM inference on any GPU wgpu reaches (Vulkan, Metal, DX12, WebGPU), with
//! a CPU path that is both the executable specification and a serious baseline.
//!
//! ## The math (per layer, per direction, per step)
//! ```text
//! gates = x_t · W_ihᵀ + b_ih + h_{t-1} · W_hhᵀ + b_hh      (4H wide: i, f, g, o)
//! i = σ(gates_i)  f = σ(gates_f)  g = tanh(gates_g)  o = σ(gates_o)
//! c_t = f ⊙ c_{t-1} + i ⊙ g
//! h_t = o ⊙ tanh(c_t)          (with proj_size: h_t = (o ⊙ tanh(c_t)) · W_hrᵀ)
//! ```
//!
//! ## Shapes (PyTorch's `nn.LSTM`)
//! - input `x`: `[T, B, I]`, or `[B, T, I]` with `batch_first`
//! - `h0`, `h_n`: `[D*L, B, H_out]`; `c0`, `c_n`: `[D*L, B, H]`, index `layer * D + direction`
//! - output: `[T, B, D*H_out]` (`[B, T, D*H_out]` with `batch_first`), directions concatenated
//!
//! where `D` = 2 if bidirectional else 1, `H_out` = `proj_size` if set else `hidden_size`.
//! Weights use PyTorch's names and layouts; see [`weights`].
//!
//! ## Training
//! [`train`] holds the training API ([`train::Trainer`], [`train::CpuTrainer`],
//! [`gpu::GpuTrainer`]): backward through the whole model, [`loss`] functions, and PyTorch's
//! optimizers, on either path. [`cpu::CpuLstm::backward`] is the reference BPTT.
//!
//! ## Features
//! - `cli` (default): the `lstm-wgpu` binary (clap, indicatif, env_logger); turns on `bench`
//!   and `plot`.
//! - `bench`: module `bench`, the benchmarks the binary runs, with JSON output
//!   (serde_json).
//! - `plot`: module `plot`, loss curves as PNG (plotters, drawn in pure Rust with
//!   a bundled DejaVu Sans; no system font library).
//!
//! With `default-features = false` the crate is the library alone: the CPU and GPU paths,
//! training, [`io`] and [`check`], and none of the crates above.
//!
//! ## WebAssembly (the browser)
//! The library builds for `wasm32-unknown-unknown` with `default-features = false`; the GPU
//! path then runs on the browser's WebGPU. There, only the async calls exist
//! ([`gpu::GpuContext::new_async`], [`gpu::GpuLstm::new_async`],
//! [`gpu::GpuLstm::forward_with_async`], [`gpu::GpuTrainer::step_async`], …): the blocking
//! wrappers would wait forever for a browser that only makes progress between tasks, so they
//! are compiled out, and [`train::Trainer`] is not implemented for [`gpu::GpuTrainer`]. The
//! CPU path runs on one thread (more is [`Error::Config`]). No OS entropy is used (every
//! generator is seeded), so no `getrandom` backend needs configuring. web/ holds a page and a
//! test suite that run it in headless Chromium (docs/browser.md).
//!
//! ## Example
//! ```no_run
//! use lstm_wgpu::{cpu::CpuLstm, gpu::{GpuContext, GpuLstm}, LstmConfig, LstmWeights, Tensor};
//! # fn main() -> lstm_wgpu::Result<()> {
//! let config = LstmConfig::new(8, 32).num_layers(2).bidirectional(true);
//! let weights = LstmWeights::init(&config, 0)?;
//! let x = Tensor::full([10, 4, 8], 0.5f32); // [T, B, I]
//! let ctx = GpuContext::new()?;
//! let mut gpu = GpuLstm::new(&ctx, &weights)?;
//! let out = gpu.forward(&x, None, None)?;
//! let reference = CpuLstm::<f32>::new(&weights).forward(&x, None, None)?;
//! assert_eq!(out.output.shape(), reference.output.shape()); // [10, 4, 64]
//! # Ok(()) }
//! ```

#![warn(missing_docs)]
// wgpu's types are neither Send nor Sync on wasm32 (one thread there); the Arcs that share
// them between threads natively are still right
#![cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]

#[cfg(feature = "bench")]
pub mod bench;
pub mod cell;
pub mod check;
pub mod config;
pub mod cpu;
pub mod embedding;
pub mod error;
pub mod gpu;
pub mod head;
pub mod host;
pub mod io;
pub mod loss;
#[cfg(feature = "plot")]
pub mod plot;
pub mod sample;
pub mod shape;
pub mod tensor;
pub mod train;
pub mod weights;

/// The wgpu this crate is built on: the API takes and gives its `Device`, `Queue`, `Buffer`
/// and `CommandEncoder`, so use these types (or the same wgpu version) in your application.
pub use wgpu;

pub use config::LstmConfig;
pub use embedding::Embedding;
pub use error::{Error, Result};
pub use head::Linear;
pub use shape::{Dims, Inputs, LstmOutput};
pub use tensor::Tensor;
pub use weights::{LayerWeights, LstmWeights, ParamKind};

/// The README's code blocks are compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// So are those of the streaming guide.
#[doc = include_str!("../docs/streaming.md")]
#[cfg(doctest)]
pub struct StreamingDoctests;
