//! Forward-inference benchmarking as a user sees it: input on the host, output back on the
//! host, every iteration fully synchronised (the GPU forward returns after its readback).

use std::time::Instant;

use crate::cpu::CpuLstm;
use crate::error::Result;
use crate::gpu::{GpuContext, GpuLstm};
use crate::tensor::Tensor;
use crate::{LstmConfig, LstmWeights};

/// The shape and repetitions of one benchmark.
#[derive(Clone, Debug)]
pub struct BenchSpec {
    pub seq_len: usize,
    pub batch: usize,
    pub input: usize,
    pub hidden: usize,
    pub layers: usize,
    pub bidirectional: bool,
    pub iters: usize,
    pub warmup: usize,
}

impl BenchSpec {
    pub fn config(&self) -> LstmConfig {
        LstmConfig::new(self.input, self.hidden)
            .num_layers(self.layers)
            .bidirectional(self.bidirectional)
    }

    /// Floating-point operations of one forward pass: per step, layer, direction and batch
    /// row, 2 * 4H * (in + H_out) for the gate matmuls (plus 2 * H * P with a projection).
    pub fn flops(&self) -> f64 {
        let config = self.config();
        let (h, h_out) = (config.hidden_size as f64, config.output_size() as f64);
        let per_row: f64 = (0..config.num_layers)
            .map(|l| {
                let proj = if config.proj_size > 0 {
                    2.0 * h * h_out
                } else {
                    0.0
                };
                2.0 * 4.0 * h * (config.layer_input_size(l) as f64 + h_out) + proj
            })
            .sum();
        per_row * config.num_directions() as f64 * (self.seq_len * self.batch) as f64
    }
}

/// Timings of one device.
#[derive(Clone, Debug)]
pub struct BenchResult {
    /// "gpu" or "cpu"
    pub device: &'static str,
    pub adapter: String,
    pub median_ms: f64,
    pub min_ms: f64,
    pub gflops: f64,
}

impl BenchResult {
    /// One JSON line, the `bench --json` format.
    pub fn to_json(&self, spec: &BenchSpec) -> String {
        serde_json::json!({
            "device": self.device,
            "adapter": self.adapter,
            "seq": spec.seq_len,
            "batch": spec.batch,
            "input": spec.input,
            "hidden": spec.hidden,
            "layers": spec.layers,
            "bidirectional": spec.bidirectional,
            "median_ms": self.median_ms,
            "min_ms": self.min_ms,
            "gflops": self.gflops,
        })
        .to_string()
    }
}

/// The input every benchmark uses: a fixed pattern in [-1, 1).
pub fn bench_input(spec: &BenchSpec) -> Result<Tensor> {
    let len = spec.seq_len * spec.batch * spec.input;
    let data = (0..len)
        .map(|i| ((i * 7919) % 2000) as f32 / 1000.0 - 1.0)
        .collect();
    Tensor::new([spec.seq_len, spec.batch, spec.input], data)
}

/// Runs `step` `warmup` times untimed, then `iters` times timed; `tick` is called after
/// every run (for progress). Returns (median, min) in milliseconds.
pub fn time_runs(
    spec: &BenchSpec,
    mut step: impl FnMut() -> Result<()>,
    mut tick: impl FnMut(),
) -> Result<(f64, f64)> {
    for _ in 0..spec.warmup {
        step()?;
        tick();
    }
    let mut times = Vec::with_capacity(spec.iters);
    for _ in 0..spec.iters.max(1) {
        let start = Instant::now();
        step()?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        tick();
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times[0]))
}

/// Benchmarks the GPU path on `ctx`.
pub fn bench_gpu(
    ctx: &GpuContext,
    spec: &BenchSpec,
    weights: &LstmWeights,
    tick: impl FnMut(),
) -> Result<BenchResult> {
    let x = bench_input(spec)?;
    let mut model = GpuLstm::new(ctx, weights)?;
    let (median_ms, min_ms) = time_runs(spec, || model.forward(&x, None, None).map(|_| ()), tick)?;
    Ok(BenchResult {
        device: "gpu",
        adapter: ctx.adapter_name(),
        median_ms,
        min_ms,
        gflops: spec.flops() / median_ms / 1e6,
    })
}

/// Benchmarks the CPU path (f32, matrixmultiply GEMMs, one thread).
pub fn bench_cpu(
    spec: &BenchSpec,
    weights: &LstmWeights,
    tick: impl FnMut(),
) -> Result<BenchResult> {
    let x = bench_input(spec)?;
    let model = CpuLstm::<f32>::new(weights);
    let (median_ms, min_ms) = time_runs(spec, || model.forward(&x, None, None).map(|_| ()), tick)?;
    Ok(BenchResult {
        device: "cpu",
        adapter: "CPU f32 (matrixmultiply, 1 thread)".into(),
        median_ms,
        min_ms,
        gflops: spec.flops() / median_ms / 1e6,
    })
}
