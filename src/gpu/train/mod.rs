//! Training on the GPU. One step is one submission: the forward pass keeping what backward
//! needs, the loss, backward through the head and every layer (one fused dispatch per
//! timestep per layer, plus one per step with a projection), the weight gradients as GEMMs
//! over all timesteps, gradient clipping, the optimizer, and the re-layout of the updated
//! flat parameters into the forward kernels' layouts. The host reads back the loss (4 bytes)
//! and nothing else.
//!
//! Files: `trainer` ([`GpuTrainer`]), `backward` (loss and backward pass), `tiles` (the
//! backward step's tiles, now in kernels), `weight_grads`, `columns` (bias gradients), `reduce` (fixed-order
//! sums), `relayout` (flat parameters to the kernels' layouts), `losses` (the loss ring),
//! `snapshot` (the whole state read back and restored, and the learning rate), `tune`
//! (measuring a training step's kernel choices).

mod backward;
mod columns;
mod copies;
mod losses;
mod reduce;
mod relayout;
mod snapshot;
mod trainer;
#[cfg(not(target_arch = "wasm32"))]
mod tune;
mod weight_grads;

pub use trainer::{GpuGradients, GpuTrainer};
#[cfg(not(target_arch = "wasm32"))]
pub use tune::tune_training;
