//! Weights on the GPU: PyTorch's layouts re-laid out once for the kernels (`layout.rs`, on
//! the host) and uploaded once (`resident.rs`), shared by models, pools and trainers.

mod layout;
mod resident;

pub use resident::GpuWeights;
pub(crate) use resident::ResidentWeights;
