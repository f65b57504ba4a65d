//! Files: safetensors state dicts (PyTorch names) and `.npy` arrays. Every write is atomic.

pub mod atomic;
pub mod npy;
pub mod safetensors;
