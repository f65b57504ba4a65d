//! Benchmarking as a user sees it. Forward inference: input on the host, output back on the
//! host, every iteration fully synchronised (the GPU forward returns after its readback).
//! Where the device has timestamp queries, the GPU time of each pass is measured too.
//! Training: [`bench_gpu_train`] and [`bench_cpu_train`], per step.

use std::time::Instant;

mod train;

pub use train::{bench_cpu_train, bench_gpu_train, TrainSpec, TrainTask};

use crate::cpu::FastCpuLstm;
use crate::error::Result;
use crate::gpu::{GpuContext, GpuLstm, KernelChoice};
use crate::shape::Inputs;
use crate::tensor::Tensor;
use crate::{LstmConfig, LstmWeights};

/// The shape and repetitions of one benchmark.
#[derive(Clone, Debug)]
pub struct BenchSpec {
    /// Sequence length `T`.
    pub seq_len: usize,
    /// Batch size `B`.
    pub batch: usize,
    /// Input size `I`.
    pub input: usize,
    /// Hidden size `H`.
    pub hidden: usize,
    /// Stacked layers `L`.
    pub layers: usize,
    /// Two directions (`D` = 2).
    pub bidirectional: bool,
    /// Timed runs (at least one runs).
    pub iters: usize,
    /// Untimed runs first.
    pub warmup: usize,
    /// The GPU path's recurrent kernel (the table's choice by default).
    pub kernel: KernelChoice,
    /// The CPU path's threads.
    pub threads: usize,
}

impl BenchSpec {
    /// The LSTM this benchmark runs (bias, no projection, time-major).
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
        per_row * config.num_directions() as f64 * (self.seq_len as f64 * self.batch as f64)
    }
}

/// Timings of one device.
#[derive(Clone, Debug)]
pub struct BenchResult {
    /// "gpu" or "cpu"
    pub device: &'static str,
    /// The GPU adapter's name, or the CPU path's description (threads, SIMD lanes).
    pub adapter: String,
    /// The recurrent kernel that ran (GPU: its variant and tiles, and the chunk length).
    pub kernel: String,
    /// GPU: where the kernel came from (the table, the wisdom file, or `--kernel`).
    pub kernel_source: Option<crate::gpu::wisdom::Source>,
    /// Median time of a run, host in, host out (training: of a step).
    pub median_ms: f64,
    /// Fastest run, as `median_ms`.
    pub min_ms: f64,
    /// Median GPU time of a pass (timestamp queries), when the device has them.
    pub gpu_ms: Option<f64>,
    /// GPU: device memory in use after the timed runs, MiB (where the backend reports it).
    pub gpu_memory_mib: Option<f64>,
    /// CPU: the threads it ran on.
    pub threads: Option<usize>,
    /// GPU: dispatches per forward pass (0 on the CPU and for training).
    pub dispatches: usize,
    /// GPU: host time to record a forward pass's dispatches into an encoder, ms (0 where
    /// `dispatches` is 0).
    pub record_ms: f64,
    /// Forward FLOPs (see [`BenchSpec::flops`]) per millisecond / 1e6; for a training step,
    /// three times the forward FLOPs (forward, activation gradients, weight gradients).
    pub gflops: f64,
}

impl BenchResult {
    /// A CPU-path result: (median, min) in ms, `flops` per timed run.
    pub(crate) fn cpu(
        kernel: &str,
        threads: usize,
        (median_ms, min_ms): (f64, f64),
        flops: f64,
    ) -> Self {
        let plural = if threads == 1 { "" } else { "s" };
        Self {
            device: "cpu",
            adapter: format!(
                "CPU f32, {threads} thread{plural}, {}-lane SIMD",
                crate::cpu::simd_lanes()
            ),
            threads: Some(threads),
            kernel: kernel.into(),
            kernel_source: None,
            median_ms,
            min_ms,
            gpu_ms: None,
            gpu_memory_mib: None,
            dispatches: 0,
            record_ms: 0.0,
            gflops: flops / median_ms / 1e6,
        }
    }

    /// Microseconds per timestep, host in/out.
    pub fn us_per_step(&self, spec: &BenchSpec) -> f64 {
        self.median_ms * 1e3 / spec.seq_len as f64
    }

    /// Microseconds of GPU time per timestep.
    pub fn gpu_us_per_step(&self, spec: &BenchSpec) -> Option<f64> {
        self.gpu_ms.map(|ms| ms * 1e3 / spec.seq_len as f64)
    }
}

impl BenchResult {
    /// One JSON line, the `bench --json` format; training runs (`train`) add `train`,
    /// `out_features`, `optimizer` and `steps_per_s`, and time one step per iteration.
    pub fn to_json(&self, spec: &BenchSpec, train: Option<&TrainSpec>) -> String {
        let mut line = serde_json::json!({
            "device": self.device,
            "adapter": self.adapter,
            "kernel": self.kernel,
            "kernel_source": self.kernel_source.map(|s| s.to_string()),
            "seq": spec.seq_len,
            "batch": spec.batch,
            "input": spec.input,
            "hidden": spec.hidden,
            "layers": spec.layers,
            "bidirectional": spec.bidirectional,
            "median_ms": self.median_ms,
            "min_ms": self.min_ms,
            "us_per_step": self.us_per_step(spec),
            "gpu_ms": self.gpu_ms,
            "gpu_us_per_step": self.gpu_us_per_step(spec),
            "gpu_memory_mib": self.gpu_memory_mib,
            "threads": self.threads,
            "dispatches": self.dispatches,
            "record_ms": self.record_ms,
            "gflops": self.gflops,
        });
        if let Some(t) = train {
            line["train"] = true.into();
            line["out_features"] = t.out_features.into();
            line["optimizer"] = format!("{:?}", t.optimizer).to_lowercase().into();
            line["task"] = t.task.name().into();
            line["out_features"] = t.out_width().into();
            line["dropout"] = t.dropout.into();
            if let train::TrainTask::Language { vocab } = t.task {
                line["vocab"] = vocab.into();
            }
            line["steps_per_s"] = (1e3 / self.median_ms).into();
        }
        line.to_string()
    }
}

/// The input every benchmark uses: a fixed pattern in [-1, 1). A shape the host cannot
/// hold is [`crate::Error::HostMemory`] naming its bytes, before any is written.
pub fn bench_input(spec: &BenchSpec) -> Result<Tensor> {
    Tensor::try_from_fn(
        "bench input [T, B, I]",
        [spec.seq_len, spec.batch, spec.input],
        |i| (i.wrapping_mul(7919) % 2000) as f32 / 1000.0 - 1.0,
    )
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
    let mut times = Vec::with_capacity(spec.iters.clamp(1, 1 << 16));
    for _ in 0..spec.iters.max(1) {
        let start = Instant::now();
        step()?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        tick();
    }
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    Ok((median(&mut times), min))
}

/// The device memory `ctx` has allocated, MiB.
pub(crate) fn memory_mib(ctx: &GpuContext) -> Option<f64> {
    ctx.memory_in_use().map(|b| b as f64 / (1024.0 * 1024.0))
}

pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
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
    model.set_kernel(spec.kernel);
    let inputs = Inputs::new(&x);
    // host time without timestamp queries (they add a readback), then GPU time apart
    let (median_ms, min_ms) = time_runs(spec, || model.forward_with(&inputs).map(|_| ()), tick)?;
    let mut gpu_times = Vec::new();
    if ctx.has_timestamps() {
        for _ in 0..spec.iters.max(1) {
            gpu_times.extend(model.forward_timed(&inputs)?.1);
        }
    }
    let gpu_ms = (!gpu_times.is_empty()).then(|| median(&mut gpu_times));
    let (variant, chunk) = model.kernel()?;
    // host cost of recording the pass: encode and finish a command buffer never submitted
    let mut records = (0..3)
        .map(|_| {
            let mut encoder = ctx
                .device()
                .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
            let start = Instant::now();
            model.encode(&mut encoder)?;
            drop(encoder.finish());
            Ok(start.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<Vec<f64>>>()?;
    Ok(BenchResult {
        device: "gpu",
        adapter: ctx.adapter_name(),
        kernel: format!("{variant} chunk={chunk}"),
        kernel_source: Some(model.kernel_source()?),
        median_ms,
        min_ms,
        gpu_ms,
        gpu_memory_mib: memory_mib(ctx),
        threads: None,
        dispatches: model.plan()?.dispatch_count(),
        record_ms: median(&mut records),
        gflops: spec.flops() / median_ms / 1e6,
    })
}

/// "fused step (packed panels); " and each layer's plan, runs of equal plans together.
fn cpu_plan(model: &FastCpuLstm, spec: &BenchSpec) -> String {
    let dims = crate::Dims {
        seq_len: spec.seq_len,
        batch: spec.batch,
    };
    let layers = model.model().config.num_layers;
    let plans: Vec<String> = (0..layers)
        .map(|l| model.plan(l, dims).to_string())
        .collect();
    let mut parts = Vec::new();
    let mut first = 0;
    for l in 1..=layers {
        if l == layers || plans[l] != plans[first] {
            let which = match (first, l - 1) {
                _ if layers == 1 => String::new(),
                (a, b) if a == b => format!("layer {a}: "),
                (a, b) => format!("layers {a}-{b}: "),
            };
            parts.push(format!("{which}{}", plans[first]));
            first = l;
        }
    }
    format!("fused step (packed panels); {}", parts.join(" | "))
}

/// Benchmarks the fast CPU path ([`FastCpuLstm`], f32) on `spec.threads` threads.
pub fn bench_cpu(
    spec: &BenchSpec,
    weights: &LstmWeights,
    tick: impl FnMut(),
) -> Result<BenchResult> {
    let x = bench_input(spec)?;
    let model = FastCpuLstm::new(weights).with_threads(spec.threads)?;
    let times = time_runs(spec, || model.forward(&x, None, None).map(|_| ()), tick)?;
    let plan = cpu_plan(&model, spec);
    Ok(BenchResult::cpu(&plan, spec.threads, times, spec.flops()))
}
