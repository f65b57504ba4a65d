//! `lstm-wgpu bench`: forward inference timed end to end (host in, host out), with the GPU
//! time from timestamp queries where the device has them; with `--train`, training steps.

use clap::ValueEnum;
use lstm_wgpu::bench::{
    bench_cpu, bench_cpu_train, bench_gpu, bench_gpu_train, BenchResult, BenchSpec, TrainSpec,
    TrainTask,
};
use lstm_wgpu::gpu::KernelChoice;
use lstm_wgpu::train::OptimizerKind;
use lstm_wgpu::{Error, LstmWeights, Result};

use crate::cpu_args::CpuArgs;
use crate::gpu_args::GpuArgs;
use crate::progress::Progress;
use crate::stdout::outln;
use crate::train::OptimizerArg;

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
    #[arg(long, required_unless_present = "weights")]
    input: Option<usize>,
    /// Hidden size H
    #[arg(long, required_unless_present = "weights")]
    hidden: Option<usize>,
    /// Time this model (safetensors or ONNX, forward only) instead of a random one of
    /// --input/--hidden/--layers/--bidirectional, which it then sets
    #[arg(long, conflicts_with_all = ["input", "hidden", "train", "stream"])]
    weights: Option<std::path::PathBuf>,
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
    /// Time training steps (Linear head, MSE, full batch) instead of forward passes
    #[arg(long)]
    train: bool,
    /// With --train: the head's width O
    #[arg(long, default_value_t = 16)]
    out_features: usize,
    /// With --train: the optimizer
    #[arg(long, value_enum, default_value = "adam")]
    optimizer: OptimizerArg,
    /// With --train: `step` (MSE at every step), `sequence` (classification: cross-entropy
    /// on the head applied to the final state, one class per sequence, O classes) or `lm` (a
    /// language model: token ids through an embedding, cross-entropy over --vocab at every
    /// step)
    #[arg(long, value_enum, default_value = "step")]
    task: TaskArg,
    /// With --task lm: the vocabulary (the head's width)
    #[arg(long, default_value_t = 256)]
    vocab: usize,
    /// With --train: dropout at every site (input, between layers, output)
    #[arg(long, default_value_t = 0.0)]
    dropout: f32,
    /// Time streamed timesteps (µs per step): on --device gpu host in/out, GPU-resident per
    /// submit and per frame, and with B > 1 a state pool of B active streams; on --device
    /// cpu one CpuStream step per call
    #[arg(long, conflicts_with = "train")]
    stream: bool,
    /// With --stream: steps recorded per submission in the frame figure
    #[arg(long, default_value_t = 16)]
    frame: usize,
    /// With --stream: also the GPU time of each dispatch of one step, and of the copies and
    /// barriers between them (timestamp queries; medians over the timed steps)
    #[arg(long, requires = "stream")]
    breakdown: bool,
    /// One JSON line per device instead of a table
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    gpu: GpuArgs,
    #[command(flatten)]
    cpu: CpuArgs,
}

pub fn main(args: Args) -> Result<()> {
    if args.iters == 0 {
        return Err(Error::Input("--iters must be at least 1".into()));
    }
    // the benchmark's input is [T, B, I], whatever layout the model was saved with
    let model = args
        .weights
        .as_deref()
        .map(crate::weights_arg::load)
        .transpose()?
        .map(|mut w| {
            w.set_batch_first(false);
            w
        });
    let (input, hidden, layers, bidirectional) = match &model {
        Some(w) => {
            let c = w.config();
            (c.input_size, c.hidden_size, c.num_layers, c.bidirectional)
        }
        None => (
            args.input.unwrap_or(0),
            args.hidden.unwrap_or(0),
            args.layers,
            args.bidirectional,
        ),
    };
    let spec = BenchSpec {
        seq_len: args.seq,
        batch: args.batch,
        input,
        hidden,
        layers,
        bidirectional,
        iters: args.iters,
        warmup: args.warmup,
        kernel: args.kernel,
        threads: args.cpu.threads()?,
    };
    if args.stream {
        if args.bidirectional || args.device == BenchDevice::Both {
            return Err(Error::Input(
                "--stream times a unidirectional model on --device gpu or --device cpu".into(),
            ));
        }
        let config = lstm_wgpu::LstmConfig::new(input, hidden).num_layers(args.layers);
        let weights = LstmWeights::init(&config, 0)?;
        let stream = crate::stream_bench::StreamSpec {
            batch: args.batch,
            input,
            hidden,
            layers: args.layers,
            steps: args.iters.max(1).saturating_mul(10),
            frame: args.frame,
            json: args.json,
            breakdown: args.breakdown,
        };
        if args.device == BenchDevice::Cpu {
            return crate::stream_bench::run_cpu(&weights, &stream);
        }
        return crate::stream_bench::run(&args.gpu.context()?, &weights, &stream);
    }
    if args.train && args.out_features == 0 {
        return Err(Error::Input("--out-features must be at least 1".into()));
    }
    let train = args.train.then_some(TrainSpec {
        task: match args.task {
            TaskArg::Step => TrainTask::PerStep,
            TaskArg::Sequence => TrainTask::PerSequence,
            TaskArg::Lm => TrainTask::Language { vocab: args.vocab },
        },
        dropout: args.dropout,
        out_features: args.out_features,
        optimizer: match args.optimizer {
            OptimizerArg::Sgd => OptimizerKind::Sgd,
            OptimizerArg::Adam => OptimizerKind::Adam,
            OptimizerArg::Adamw => OptimizerKind::AdamW,
        },
    });
    let results = match &train {
        Some(t) => on_devices(
            &spec,
            args.device,
            "bench train",
            |tick| bench_gpu_train(&args.gpu.context()?, &spec, t, tick),
            |tick| bench_cpu_train(&spec, t, tick),
        )?,
        None => run(&spec, args.device, args.gpu, model)?,
    };
    if args.json {
        for r in &results {
            outln!("{}", r.to_json(&spec, train.as_ref()))?;
        }
    } else if let Some(t) = &train {
        print_train_table(&spec, t, &results)?;
    } else {
        print_table(&spec, &results)?;
    }
    Ok(())
}

/// What `bench --train` trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TaskArg {
    Step,
    Sequence,
    Lm,
}

fn print_train_table(spec: &BenchSpec, train: &TrainSpec, results: &[BenchResult]) -> Result<()> {
    let task = match train.task {
        TrainTask::PerStep => "MSE per step".to_string(),
        TrainTask::PerSequence => "cross-entropy per sequence".to_string(),
        TrainTask::Language { vocab } => {
            format!("language model: ids, embedding, cross-entropy over V={vocab}")
        }
    };
    let task = format!("{task}, dropout {}", train.dropout);
    outln!(
        "training step ({:?}, {task}, head O={}, full batch): T={} B={} I={} H={} layers={} bidirectional={}, median of {} after {} warmup",
        train.optimizer,
        train.out_width(),
        spec.seq_len,
        spec.batch,
        spec.input,
        spec.hidden,
        spec.layers,
        spec.bidirectional,
        spec.iters,
        spec.warmup
    )?;
    outln!(
        "{:<6} {:<48} {:>11} {:>9} {:>15} {:>12}",
        "device",
        "adapter",
        "ms/step",
        "steps/s",
        "GPU ms/step",
        "GPU MiB"
    )?;
    for r in results {
        let gpu = r.gpu_ms.map_or("-".to_string(), |ms| format!("{ms:.3}"));
        let mib = r
            .gpu_memory_mib
            .map_or("-".to_string(), |m| format!("{m:.1}"));
        outln!(
            "{:<6} {:<48} {:>11.3} {:>9.1} {:>15} {:>12}",
            r.device,
            r.adapter,
            r.median_ms,
            1e3 / r.median_ms,
            gpu,
            mib
        )?;
        if let Some(source) = r.kernel_source {
            outln!("       kernel: {} (from the {source})", r.kernel)?;
        }
    }
    Ok(())
}

/// Benchmarks forward inference on the chosen devices, with a progress bar for long runs.
pub fn run(
    spec: &BenchSpec,
    device: BenchDevice,
    gpu: GpuArgs,
    model: Option<LstmWeights>,
) -> Result<Vec<BenchResult>> {
    let weights = match model {
        Some(w) => w,
        None => LstmWeights::init(&spec.config(), 0)?,
    };
    on_devices(
        spec,
        device,
        "bench",
        |tick| bench_gpu(&gpu.context()?, spec, &weights, tick),
        |tick| bench_cpu(spec, &weights, tick),
    )
}

/// Runs the GPU and/or the CPU benchmark, each told to `tick` the shared progress bar.
fn on_devices(
    spec: &BenchSpec,
    device: BenchDevice,
    label: &str,
    gpu: impl FnOnce(&mut dyn FnMut()) -> Result<BenchResult>,
    cpu: impl FnOnce(&mut dyn FnMut()) -> Result<BenchResult>,
) -> Result<Vec<BenchResult>> {
    let runs = spec.warmup.saturating_add(spec.iters) as u64;
    let devices = if device == BenchDevice::Both { 2 } else { 1 };
    let mut progress = Progress::new(runs.saturating_mul(devices), label);
    let mut results = Vec::new();
    if device != BenchDevice::Cpu {
        progress.set_label(&format!("{label} gpu"));
        results.push(gpu(&mut || progress.tick())?);
    }
    if device != BenchDevice::Gpu {
        progress.set_label(&format!("{label} cpu"));
        results.push(cpu(&mut || progress.tick())?);
    }
    progress.finish();
    Ok(results)
}

pub fn print_table(spec: &BenchSpec, results: &[BenchResult]) -> Result<()> {
    outln!(
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
    )?;
    outln!(
        "{:<6} {:<48} {:>11} {:>11} {:>9} {:>11} {:>9}",
        "device",
        "adapter",
        "median ms",
        "min ms",
        "us/step",
        "GPU ms",
        "GFLOP/s"
    )?;
    for r in results {
        let gpu = r.gpu_ms.map_or("-".to_string(), |ms| format!("{ms:.3}"));
        outln!(
            "{:<6} {:<48} {:>11.3} {:>11.3} {:>9.2} {:>11} {:>9.2}",
            r.device,
            r.adapter,
            r.median_ms,
            r.min_ms,
            r.us_per_step(spec),
            gpu,
            r.gflops
        )?;
        match r.kernel_source {
            Some(source) => outln!("       kernel: {} (from the {source})", r.kernel)?,
            None => outln!("       kernel: {}", r.kernel)?,
        }
        if r.dispatches > 0 {
            outln!(
                "       {} dispatches, recorded in {:.3} ms ({:.2} us each)",
                r.dispatches,
                r.record_ms,
                r.record_ms * 1e3 / r.dispatches as f64
            )?;
        }
    }
    let find = |d| results.iter().find(|r| r.device == d);
    if let (Some(gpu), Some(cpu)) = (find("gpu"), find("cpu")) {
        outln!(
            "GPU/CPU: the GPU is {:.2}x the speed of the CPU (CPU median / GPU median)",
            cpu.median_ms / gpu.median_ms
        )?;
    }
    Ok(())
}
