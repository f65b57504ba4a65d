//! The CPU path: the executable specification every GPU result is checked against, and a
//! real baseline (GEMMs from `matrixmultiply`). Generic over [`Real`] (f32 or f64).

mod backward;
mod forward;
mod real;

pub use backward::Gradients;
pub use forward::{CpuHead, CpuLayer, CpuLstm};
pub use real::{gemm, sigmoid, Op, Real};
