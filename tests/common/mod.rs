//! Shared test helpers: the GPU context (fails loudly without an adapter), named tolerances,
//! comparisons that print index/got/want, and seeded random tensors.
#![allow(dead_code)]

use std::sync::OnceLock;

use lstm_wgpu::gpu::GpuContext;
use lstm_wgpu::Tensor;
use rand::{rngs::StdRng, Rng, SeedableRng};

/// `|got - want| <= abs + rel * |want|`, elementwise.
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    pub abs: f64,
    pub rel: f64,
}

/// GPU (f32) against the CPU reference in f64.
pub const GPU_VS_F64: Tolerance = Tolerance {
    abs: 2e-5,
    rel: 1e-4,
};
/// Anything in f32 against numbers PyTorch computed in f32.
pub const VS_PYTORCH: Tolerance = Tolerance {
    abs: 1e-5,
    rel: 1e-4,
};

/// The shared GPU context. Panics with instructions when no adapter exists: a GPU test
/// never passes without a GPU.
pub fn gpu() -> &'static GpuContext {
    static CTX: OnceLock<GpuContext> = OnceLock::new();
    CTX.get_or_init(|| match GpuContext::new() {
        Ok(ctx) => ctx,
        Err(e) => panic!(
            "GPU tests need a wgpu adapter and found none: {e}\n\
             On Debian/Ubuntu: sudo apt-get install -y mesa-vulkan-drivers (lavapipe, a Vulkan \
             driver that runs on the CPU); elsewhere install your GPU's Vulkan/Metal/DX12 driver."
        ),
    })
}

/// Asserts `got` matches `want` within `tol`; on failure prints the first bad index, got,
/// want and how many elements failed. NaN never matches.
pub fn assert_close(what: &str, got: &[f32], want: &[f64], tol: Tolerance) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: length {} vs {}",
        got.len(),
        want.len()
    );
    let bad: Vec<usize> = (0..got.len())
        .filter(|&i| {
            let (g, w) = (got[i] as f64, want[i]);
            let within = (g - w).abs() <= tol.abs + tol.rel * w.abs();
            !within // NaN is never within
        })
        .collect();
    if let Some(&i) = bad.first() {
        panic!(
            "{what}: {} of {} elements outside {tol:?}; first at index {i}: got {}, want {}",
            bad.len(),
            got.len(),
            got[i],
            want[i]
        );
    }
}

/// A tensor of `shape` with elements from U(-1, 1), seeded.
pub fn random_tensor(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let len = shape.iter().product();
    Tensor::new(
        shape.to_vec(),
        (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect(),
    )
    .unwrap()
}

pub fn to_f64(t: &Tensor) -> Tensor<f64> {
    t.map(|x| x as f64)
}
