//! The CPU path: [`CpuLstm`], the executable specification every GPU result is checked
//! against (generic over [`Real`]: f32, or f64 as the exact reference), and [`FastCpuLstm`],
//! the fast f32 engine checked against it (packed weights, SIMD, threads).

pub(crate) mod backward;
mod fast;
pub(crate) mod forward;
pub(crate) mod products;
mod real;

pub use backward::Gradients;
pub use fast::{
    check_threads, default_threads, simd_lanes, split_min_macs, CpuStream, FastCpuLstm, Group,
    Plan, MAX_THREADS, PARALLEL_PROJECTION_MIN_MACS, SIMD_LANES_VAR, SPLIT_STEP_MIN_MACS,
    STEP_MACS_PER_NS,
};
pub use forward::{CpuHead, CpuLayer, CpuLstm};
pub use real::{gemm, sigmoid, Op, Real};
