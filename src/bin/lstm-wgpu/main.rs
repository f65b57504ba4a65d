//! `lstm-wgpu`: run, initialise, check and benchmark PyTorch-compatible LSTMs from the shell.
//! Every failure is one line on stderr and a non-zero exit.

mod bench;
mod check;
mod convert;
mod cpu_args;
mod demo;
mod eval;
mod gpu_args;
mod info;
mod init;
mod progress;
mod run;
mod run_onnx;
mod runtime_dir;
mod sample;
mod stdout;
mod stream;
mod stream_bench;
mod train;
mod tune;
mod weights_arg;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "lstm-wgpu",
    version,
    about = "PyTorch-exact LSTMs on any GPU wgpu reaches, and on the CPU"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a model on .npy input and write .npy output
    Run(run::Args),
    /// Write PyTorch-initialised weights to a safetensors file
    Init(init::Args),
    /// List the adapters wgpu sees, the one chosen, and its limits (and describe a model)
    Info(info::Args),
    /// Compare the GPU and CPU paths on random configurations
    Check(check::Args),
    /// Time forward inference on the GPU and/or the CPU
    Bench(bench::Args),
    /// Train a model on .npy data (BPTT, on the GPU or the CPU)
    Train(Box<train::Args>),
    /// Score a model on .npy data: loss, and accuracy and perplexity for cross-entropy
    Eval(eval::Args),
    /// Initialise a model, run it on both paths, show they agree, benchmark it
    Demo(gpu_args::GpuArgs),
    /// Stream a model: one timestep per stdin line in, its output line out, state kept
    Stream(stream::Args),
    /// Generate text from a byte-level language model, written to stdout as it comes
    Sample(sample::Args),
    /// Write an ONNX model's weights as safetensors (this engine's layout)
    Convert(convert::Args),
    /// Measure the fastest correct kernels for shapes on this GPU and save them (wisdom)
    Tune(tune::Args),
}

/// Where a command runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Device {
    Gpu,
    Cpu,
}

fn main() {
    runtime_dir::ensure();
    // RUST_LOG as usual; without it, this crate's warnings (a wisdom file ignored, a bad
    // LSTM_WGPU_SIMD_LANES) and every crate's errors
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("error,lstm_wgpu=warn"),
    )
    .init();
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal failure: {info}");
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // one line: the message and its hints, without the "try --help" footer
            let text = e
                .to_string()
                .replace("For more information, try '--help'.", "");
            eprintln!("{} (see --help)", one_line(&text));
            std::process::exit(2);
        }
    };
    let result = match cli.command {
        Command::Run(args) => run::main(args),
        Command::Init(args) => init::main(args),
        Command::Info(args) => info::main(args),
        Command::Check(args) => check::main(args),
        Command::Bench(args) => bench::main(args),
        Command::Train(args) => train::main(*args),
        Command::Eval(args) => eval::main(args),
        Command::Demo(gpu) => demo::main(gpu),
        Command::Stream(args) => stream::main(args),
        Command::Sample(args) => sample::main(args),
        Command::Tune(args) => tune::main(args),
        Command::Convert(args) => convert::main(args),
    };
    if let Err(e) = result {
        eprintln!("error: {}", one_line(&e.to_string()));
        std::process::exit(1);
    }
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}
