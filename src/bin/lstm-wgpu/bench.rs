//! `lstm-wgpu bench`: forward inference timed end to end (host in, host out), with the GPU
//! time from timestamp queries where the device has them.

use clap::ValueEnum;
use lstm_wgpu::bench::{bench_cpu, bench_gpu, BenchResult, BenchSpec};
use lstm_wgpu::gpu::KernelChoice;
use lstm_wgpu::{Error, LstmWeights, Result};

use crate::gpu_args::GpuArgs;
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
    /// The GPU's recurrent kernel: auto (the table), sequence, step, or exact tiles such as
    /// "step u=4 ks=64 bt=1 qpi=2" or "sequence ks=2"
    #[arg(long, default_value = "auto")]
    kernel: KernelChoice,
    /// One JSON line per device instead of a table
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    gpu: GpuArgs,
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
        kernel: args.kernel,
    };
    let results = run(&spec, args.device, args.gpu)?;
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
pub fn run(spec: &BenchSpec, device: BenchDevice, gpu: GpuArgs) -> Result<Vec<BenchResult>> {
    let weights = LstmWeights::init(&spec.config(), 0)?;
    let runs = (spec.warmup + spec.iters) as u64;
    let devices = if device == BenchDevice::Both { 2 } else { 1 };
    let mut progress = Progress::new(runs * devices, "bench");
    let mut results = Vec::new();
    if device != BenchDevice::Cpu {
        progress.set_label("bench gpu");
        let ctx = gpu.context()?;
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
        "{:<6} {:<48} {:>11} {:>11} {:>9} {:>11} {:>9}",
        "device", "adapter", "median ms", "min ms", "us/step", "GPU ms", "GFLOP/s"
    );
    for r in results {
        let gpu = r.gpu_ms.map_or("-".to_string(), |ms| format!("{ms:.3}"));
        println!(
            "{:<6} {:<48} {:>11.3} {:>11.3} {:>9.2} {:>11} {:>9.2}",
            r.device,
            r.adapter,
            r.median_ms,
            r.min_ms,
            r.us_per_step(spec),
            gpu,
            r.gflops
        );
        println!("       kernel: {}", r.kernel);
        if r.dispatches > 0 {
            println!(
                "       {} dispatches, recorded in {:.3} ms ({:.2} us each)",
                r.dispatches,
                r.record_ms,
                r.record_ms * 1e3 / r.dispatches as f64
            );
        }
    }
    let find = |d| results.iter().find(|r| r.device == d);
    if let (Some(gpu), Some(cpu)) = (find("gpu"), find("cpu")) {
        println!(
            "GPU/CPU: the GPU is {:.2}x the speed of the CPU (CPU median / GPU median)",
            cpu.median_ms / gpu.median_ms
        );
    }
}
