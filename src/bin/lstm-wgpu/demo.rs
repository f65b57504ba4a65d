//! `lstm-wgpu demo`: the whole story in one command.

use lstm_wgpu::bench::{bench_input, BenchSpec};
use lstm_wgpu::check::GPU_VS_F64;
use lstm_wgpu::cpu::CpuLstm;
use lstm_wgpu::gpu::{GpuLstm, KernelChoice};
use lstm_wgpu::{Error, LstmWeights, Result};

use crate::bench::{print_table, run, BenchDevice};
use crate::gpu_args::GpuArgs;
use crate::stdout::outln;

pub fn main(gpu_args: GpuArgs) -> Result<()> {
    let spec = BenchSpec {
        seq_len: 32,
        batch: 8,
        input: 32,
        hidden: 128,
        layers: 2,
        bidirectional: false,
        iters: 5,
        warmup: 1,
        kernel: KernelChoice::Auto,
        threads: lstm_wgpu::cpu::default_threads(),
    };
    let config = spec.config();
    let weights = LstmWeights::init(&config, 0)?;
    let x = bench_input(&spec)?;
    let ctx = gpu_args.context()?;
    outln!("adapter: {}", ctx.adapter_name())?;
    outln!(
        "model:   nn.LSTM(input_size={}, hidden_size={}, num_layers={}), PyTorch init, seed 0",
        config.input_size,
        config.hidden_size,
        config.num_layers
    )?;
    let gpu = GpuLstm::new(&ctx, &weights)?.forward(&x, None, None)?;
    let cpu = CpuLstm::<f64>::new(&weights).forward(&x.map(f64::from), None, None)?;
    let max_diff = gpu
        .output
        .data()
        .iter()
        .zip(cpu.output.data())
        .map(|(g, c)| (*g as f64 - c).abs())
        .fold(0.0, f64::max);
    outln!(
        "output {:?}: max |gpu - cpu_f64| = {max_diff:.2e}",
        gpu.output.shape()
    )?;
    if let Some(m) = GPU_VS_F64.first_mismatch(gpu.output.data(), cpu.output.data()) {
        return Err(Error::Input(format!(
            "GPU and CPU disagree at output[{}]: {} vs {}",
            m.index, m.got, m.want
        )));
    }
    outln!(
        "GPU and CPU agree within |d| <= {} + {}*|cpu|\n",
        GPU_VS_F64.abs,
        GPU_VS_F64.rel
    )?;
    let results = run(&spec, BenchDevice::Both, gpu_args, None)?;
    print_table(&spec, &results)
}
