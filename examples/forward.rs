//! One forward pass on the GPU and on the CPU path: prints the adapter, both times and the
//! largest difference. Run: `cargo run --release --example forward`.

use std::time::Instant;

use lstm_wgpu::cpu::CpuLstm;
use lstm_wgpu::gpu::{GpuContext, GpuLstm};
use lstm_wgpu::{LstmConfig, LstmWeights, Tensor};

fn main() -> lstm_wgpu::Result<()> {
    env_logger::init();
    let (seq_len, batch, input, hidden, layers) = (64, 16, 64, 256, 2);
    let config = LstmConfig::new(input, hidden).num_layers(layers);
    let weights = LstmWeights::init(&config, 42)?;
    let x_data = (0..seq_len * batch * input)
        .map(|i| ((i * 7919) % 2000) as f32 / 1000.0 - 1.0)
        .collect();
    let x = Tensor::new([seq_len, batch, input], x_data)?;

    let ctx = GpuContext::new()?;
    println!("adapter: {}", ctx.adapter_name());
    println!("shape:   T={seq_len} B={batch} I={input} H={hidden} layers={layers}");
    let mut gpu = GpuLstm::new(&ctx, &weights)?;
    gpu.forward(&x, None, None)?; // first call allocates buffers and warms the driver
    let start = Instant::now();
    let gpu_out = gpu.forward(&x, None, None)?;
    let gpu_ms = start.elapsed().as_secs_f64() * 1e3;

    let cpu = CpuLstm::<f32>::new(&weights);
    let start = Instant::now();
    let cpu_out = cpu.forward(&x, None, None)?;
    let cpu_ms = start.elapsed().as_secs_f64() * 1e3;

    let max_diff = gpu_out
        .output
        .data()
        .iter()
        .zip(cpu_out.output.data())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    println!("gpu:     {gpu_ms:.2} ms (host in, host out)");
    println!("cpu:     {cpu_ms:.2} ms (f32, matrixmultiply)");
    println!("max |gpu - cpu| over the output: {max_diff:.3e}");
    Ok(())
}
