//! `lstm-wgpu bench`: forward inference timed end to end (host in, host out).

use clap::ValueEnum;
use lstm_wgpu::bench::{bench_cpu, bench_gpu, BenchResult, BenchSpec};
use lstm_wgpu::gpu::GpuContext;
use lstm_wgpu::{Error, LstmWeights, Result};

use crate::progress::Progress;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchDevice {
    Gpu,
    Cpu,
    Both,
}

#[derive(clap::Args)]
pub struct Args {
    /// Sequence length T
    #[arg(long)]
    seq: usize,
    /// Batch size B
    #[arg(long)]
    batch: usize,
    /// Input size I
    #[arg(long)]
    input: usize,
    /// Hidden size H
    #[arg(long)]
    hidden: usize,
    #[arg(long, default_value_t = 1)]
    layers: usize,
    #[arg(long)]
    bidirectional: bool,
    #[arg(long, value_enum, default_value = "both")]
    device: BenchDevice,
    /// Timed iterations (the median and minimum are reported)
    #[arg(long, default_value_t = 20)]
    iters: usize,
    /// Untimed iterations first
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// One JSON line per device instead of a table
    #[arg(long)]
    json: bool,
}

pub fn main(args: Args) -> Result<()> {
    if args.iters == 0 {
        return Err(Error::Input("--iters must be at least 1".into()));
    }
    let spec = BenchSpec {
        seq_len: args.seq,
        batch: args.batch,
        input: args.input,
        hidden: args.hidden,
        layers: args.layers,
        bidirectional: args.bidirectional,
        iters: args.iters,
        warmup: args.warmup,
    };
    let results = run(&spec, args.device)?;
    if args.json {
        for r in &results {
            println!("{}", r.to_json(&spec));
        }
    } else {
        print_table(&spec, &results);
    }
    Ok(())
}

/// Benchmarks the chosen devices, with a progress bar for long runs.
pub fn run(spec: &BenchSpec, device: BenchDevice) -> Result<Vec<BenchResult>> {
    let weights = LstmWeights::init(&spec.config(), 0)?;
    let runs = (spec.warmup + spec.iters) as u64;
    let devices = if device == BenchDevice::Both { 2 } else { 1 };
    let mut progress = Progress::new(runs * devices, "bench");
    let mut results = Vec::new();
    if device != BenchDevice::Cpu {
        progress.set_label("bench gpu");
        let ctx = GpuContext::new()?;
        results.push(bench_gpu(&ctx, spec, &weights, || progress.tick())?);
    }
    if device != BenchDevice::Gpu {
        progress.set_label("bench cpu");
        results.push(bench_cpu(spec, &weights, || progress.tick())?);
    }
    progress.finish();
    Ok(results)
}

pub fn print_table(spec: &BenchSpec, results: &[BenchResult]) {
    println!(
        "forward, host in/out: T={} B={} I={} H={} layers={} bidirectional={} ({:.3} GFLOP), median of {} after {} warmup",
        spec.seq_len,
        spec.batch,
        spec.input,
        spec.hidden,
        spec.layers,
        spec.bidirectional,
        spec.flops() / 1e9,
        spec.iters,
        spec.warmup
    );
    println!(
        "{:<6} {:<48} {:>12} {:>12} {:>10}",
        "device", "adapter", "median ms", "min ms", "GFLOP/s"
    );
    for r in results {
        println!(
            "{:<6} {:<48} {:>12.3} {:>12.3} {:>10.2}",
            r.device, r.adapter, r.median_ms, r.min_ms, r.gflops
        );
    }
    let find = |d| results.iter().find(|r| r.device == d);
    if let (Some(gpu), Some(cpu)) = (find("gpu"), find("cpu")) {
        println!(
            "GPU/CPU: the GPU is {:.2}x the speed of the CPU (CPU median / GPU median)",
            cpu.median_ms / gpu.median_ms
        );
    }
}
