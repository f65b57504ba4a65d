//! `lstm-wgpu run`: a safetensors model on .npy input, on the GPU or the CPU.

use std::path::{Path, PathBuf};

use lstm_wgpu::cpu::FastCpuLstm;
use lstm_wgpu::gpu::GpuLstm;
use lstm_wgpu::io::atomic::write_all_atomic;
use lstm_wgpu::io::npy;
use lstm_wgpu::{Inputs, Result};

use crate::cpu_args::CpuArgs;
use crate::gpu_args::GpuArgs;
use crate::weights_arg::Model;
use crate::Device;

#[derive(clap::Args)]
pub struct Args {
    /// Model: safetensors (nn.LSTM state dict, optional head.*) or ONNX (one LSTM node; told
    /// apart by content); with ONNX, every array is in ONNX's shapes: --input is X,
    /// --h0/--c0 initial_h/initial_c, --output the graph's first output, --hn/--cn Y_h/Y_c
    #[arg(long)]
    pub weights: PathBuf,
    /// Input [T, B, I] ([B, T, I] with --batch-first) or [T, I], float32/float64 .npy; for a
    /// model with an embedding, int64 token ids [T, B] ([B, T], [T])
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write the output (the head's when the model has one), float32 .npy
    #[arg(long)]
    pub output: PathBuf,
    /// Initial hidden state [D*L, B, H_out] (.npy); zeros when absent
    #[arg(long)]
    pub h0: Option<PathBuf>,
    /// Initial cell state [D*L, B, H] (.npy); zeros when absent
    #[arg(long)]
    pub c0: Option<PathBuf>,
    /// Where to write h_n [D*L, B, H_out]
    #[arg(long)]
    pub hn: Option<PathBuf>,
    /// Where to write c_n [D*L, B, H]
    #[arg(long)]
    pub cn: Option<PathBuf>,
    /// Sequence lengths [B], int64 or int32 .npy, each in 1..=T
    #[arg(long)]
    pub lengths: Option<PathBuf>,
    /// Input and output are [B, T, F]
    #[arg(long)]
    pub batch_first: bool,
    #[arg(long, value_enum, default_value = "gpu")]
    pub device: Device,
    #[command(flatten)]
    pub gpu: GpuArgs,
    #[command(flatten)]
    pub cpu: CpuArgs,
}

pub fn main(args: Args) -> Result<()> {
    let mut weights = match crate::weights_arg::read(&args.weights)? {
        Model::Onnx(model) => return crate::run_onnx::main(&args, &model),
        Model::Safetensors(weights) => weights,
    };
    weights.set_batch_first(args.batch_first);
    let (x, _) = crate::eval::read_input(&weights, &args.input)?;
    let h0 = args.h0.as_deref().map(npy::read_f32).transpose()?;
    let c0 = args.c0.as_deref().map(npy::read_f32).transpose()?;
    let lengths = args.lengths.as_deref().map(npy::read_lengths).transpose()?;
    let inputs = Inputs::new(&x)
        .state(h0.as_ref(), c0.as_ref())
        .lengths(lengths.as_deref());
    let out = match args.device {
        Device::Gpu => GpuLstm::new(&args.gpu.context()?, &weights)?.forward_with(&inputs)?,
        Device::Cpu => FastCpuLstm::new(&weights)
            .with_threads(args.cpu.threads()?)?
            .forward_with(&inputs)?,
    };
    // All outputs are written or none is.
    let mut files = vec![(args.output.as_path(), npy::encode_f32(&out.output)?)];
    if let Some(path) = &args.hn {
        files.push((path, npy::encode_f32(&out.h_n)?));
    }
    if let Some(path) = &args.cn {
        files.push((path, npy::encode_f32(&out.c_n)?));
    }
    let files: Vec<(&Path, &[u8])> = files.iter().map(|(p, b)| (*p, b.as_slice())).collect();
    write_all_atomic(&files)
}
