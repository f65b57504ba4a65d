//! Shared test helpers: the GPU context (fails loudly without an adapter), named tolerances,
//! comparisons that print index/got/want, and seeded random tensors.
#![allow(dead_code, unused_imports)]

use std::sync::OnceLock;

pub use lstm_wgpu::check::{Tolerance, GPU_VS_F64};
use lstm_wgpu::gpu::{
    ContextOptions, DeviceCaps, GpuContext, KernelChoice, Recurrence, SequenceTiles, StepTiles,
    Tuning,
};
use lstm_wgpu::Tensor;
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Anything in f32 against numbers PyTorch computed in f32.
pub const VS_PYTORCH: Tolerance = Tolerance {
    abs: 1e-5,
    rel: 1e-4,
};

/// Training against PyTorch's f32 steps (tests/fixtures/make_golden_train*.py): the losses
/// before each step, and the parameters after the last.
pub const TRAINED_LOSS: Tolerance = Tolerance {
    abs: 1e-5,
    rel: 1e-4,
};
pub const TRAINED_WEIGHTS: Tolerance = Tolerance {
    abs: 2e-5,
    rel: 2e-4,
};

/// The cases listed in a training fixture directory's cases.json.
pub fn fixture_cases(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("cases.json")).unwrap();
    let root: serde_json::Value = serde_json::from_str(&text).unwrap();
    root["cases"].as_array().unwrap().clone()
}

/// A fixture case's PyTorch losses, one per step.
pub fn case_losses(case: &serde_json::Value) -> Vec<f64> {
    case["losses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

/// The losses of the step,loss CSV that `train --log` writes.
pub fn logged_losses(path: &std::path::Path) -> Vec<f32> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect()
}

/// Every parameter of `got` and of `want`, flat in `want`'s layout (`want` in f64).
pub fn flat_pair(
    got: &lstm_wgpu::LstmWeights,
    want: &lstm_wgpu::LstmWeights,
) -> (Vec<f32>, Vec<f64>) {
    let layout = lstm_wgpu::train::ParamLayout::new(want);
    let want = layout.flatten(want).iter().map(|&v| v as f64).collect();
    (layout.flatten(got), want)
}

/// A training run against a fixture case: its losses against PyTorch's step by step, and
/// its final weights `trained` against PyTorch's `want`; `what` names the run in failures.
pub fn assert_trained_like_case(
    what: &str,
    losses: &[f32],
    case: &serde_json::Value,
    trained: &lstm_wgpu::LstmWeights,
    want: &lstm_wgpu::LstmWeights,
) {
    let want_losses = case_losses(case);
    assert_close(
        &format!("{what} losses"),
        losses,
        &want_losses,
        TRAINED_LOSS,
    );
    let (got, want) = flat_pair(trained, want);
    assert_close(&format!("{what} weights"), &got, &want, TRAINED_WEIGHTS);
}

/// The shared GPU context, with the adapter's own limits and the built-in kernel table (no
/// wisdom file: a machine's saved measurements never change what a test runs; the wisdom
/// tests make their own contexts). Panics with instructions when no adapter exists: a GPU
/// test never passes without a GPU.
pub fn gpu() -> &'static GpuContext {
    static CTX: OnceLock<GpuContext> = OnceLock::new();
    CTX.get_or_init(|| context(false))
}

/// A second shared context with WebGPU's default limits (browser parity).
pub fn gpu_webgpu() -> &'static GpuContext {
    static CTX: OnceLock<GpuContext> = OnceLock::new();
    CTX.get_or_init(|| context(true))
}

fn context(webgpu_limits: bool) -> GpuContext {
    let options = ContextOptions {
        webgpu_limits,
        tuning: Tuning::Table,
        wisdom_file: None,
    };
    match GpuContext::with_options(options) {
        Ok(ctx) => ctx,
        Err(e) => panic!(
            "GPU tests need a wgpu adapter and found none: {e}\n\
             On Debian/Ubuntu: sudo apt-get install -y mesa-vulkan-drivers (lavapipe, a Vulkan \
             driver that runs on the CPU); elsewhere install your GPU's Vulkan/Metal/DX12 driver."
        ),
    }
}

/// What the kernel table sees of `ctx`'s device.
pub fn caps(ctx: &GpuContext) -> DeviceCaps {
    ctx.caps()
}

/// Every kernel choice the variant tests run: the table's, each kernel with the table's
/// tiles, and exact tiles including degenerate and odd ones (a shape a choice cannot run is
/// skipped by the caller through `KernelChoice::resolve`).
pub fn kernel_choices() -> Vec<KernelChoice> {
    let sequence = |splits, steps, subgroups| {
        KernelChoice::Exact(Recurrence::Sequence(SequenceTiles {
            splits,
            steps,
            subgroups,
        }))
    };
    let step = |units, splits, rows, quads| {
        KernelChoice::Exact(Recurrence::PerStep(StepTiles {
            units,
            splits,
            rows,
            quads,
            span: 1,
        }))
    };
    let folded = |units, splits, rows, quads, span| {
        KernelChoice::Exact(Recurrence::PerStep(StepTiles {
            units,
            splits,
            rows,
            quads,
            span,
        }))
    };
    vec![
        KernelChoice::Auto,
        KernelChoice::Sequence,
        KernelChoice::PerStep,
        step(1, 1, 1, 1),
        step(4, 64, 1, 2),
        step(3, 5, 3, 3),
        step(8, 8, 16, 4),
        step(2, 16, 4, 1),
        folded(4, 16, 1, 2, 2),
        folded(2, 8, 4, 1, 4),
        folded(1, 16, 3, 2, 8),
        sequence(1, 1, false),
        sequence(3, 5, false),
        sequence(2, 3, false),
        sequence(2, 3, true),
        sequence(2, 8, false),
        sequence(4, 32, true),
    ]
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
    if let Some(m) = tol.first_mismatch(got, want) {
        panic!(
            "{what}: {} of {} elements outside {tol:?}; first at index {}: got {}, want {}",
            m.count,
            got.len(),
            m.index,
            m.got,
            m.want
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

/// A numpy format 1.0 `.npy` file with this header (`descr` such as `<f4`, `shape` as numpy
/// writes it, e.g. `(2, 3)`) and data, written by hand so that tests can make files the
/// library never writes (integers, lying headers).
pub fn npy_file(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let fortran = if fortran { "True" } else { "False" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    bytes
}

/// The bytes of a little-endian int64 `.npy` file of `shape` holding `values`.
pub fn npy_i64(shape: &[usize], values: &[i64]) -> Vec<u8> {
    assert_eq!(shape.iter().product::<usize>(), values.len());
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    npy_file("<i8", false, &shape, &data)
}

pub fn to_f64(t: &Tensor) -> Tensor<f64> {
    t.map(|x| x as f64)
}

/// The `error: …` lines of a run of the binary: what our program printed to say why it
/// failed. Other lines (a driver's notes) are not ours to count.
#[allow(dead_code)] // used by the tests that run the binary
pub fn error_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect()
}

/// How many cases of a sweep to run: `full`, or `on_gl` on wgpu's GL backend. There a cold
/// shader cache compiles every kernel afresh in the software driver, and the whole suite
/// took about 30 minutes; the smaller sweeps there run the same code paths.
pub fn sweep(full: usize, on_gl: usize) -> usize {
    match gpu().adapter_info().map(|info| info.backend) {
        Some(wgpu::Backend::Gl) => on_gl.min(full),
        _ => full,
    }
}
